"""Scoring program: compares input/res/predictions.csv with input/ref/test_labels.csv.

Writes scores.txt (what the CodaLab site reads into the leaderboard) and
detailed_results.html (shown to the participant) into the output folder.
"""
import csv
import html
import os
import sys


def labels(path):
    with open(path, newline="") as f:
        return {row["number"]: row["even"].strip() for row in csv.DictReader(f)}


def main(input_dir, output_dir):
    truth = labels(os.path.join(input_dir, "ref", "test_labels.csv"))
    predicted = labels(os.path.join(input_dir, "res", "predictions.csv"))
    rows = [(n, truth[n], predicted.get(n, "")) for n in truth]
    correct = sum(1 for _, want, got in rows if want == got)
    accuracy = correct / len(rows) if rows else 0.0

    with open(os.path.join(output_dir, "scores.txt"), "w") as f:
        f.write(f"accuracy: {accuracy:.4f}\n")
    with open(os.path.join(output_dir, "detailed_results.html"), "w") as f:
        f.write("<table><tr><th>number</th><th>even</th><th>predicted</th></tr>\n")
        for number, want, got in rows:
            f.write(f"<tr><td>{number}</td><td>{want}</td><td>{html.escape(got)}</td></tr>\n")
        f.write("</table>\n")
    print(f"scored {len(rows)} predictions: accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
