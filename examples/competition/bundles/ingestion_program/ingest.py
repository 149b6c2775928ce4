"""Ingestion program: runs the participant's model.py on the input data.

Arguments: the input folder (train.csv, test.csv), the output folder, and the
folder of the participant's submission. The participant's code never reads the
data itself; this program calls Model.fit and Model.predict and writes
predictions.csv, which the scoring step reads as input/res.
"""
import csv
import importlib.util
import os
import sys
import time


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main(input_dir, output_dir, submission_dir):
    spec = importlib.util.spec_from_file_location(
        "model", os.path.join(submission_dir, "model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    train = rows(os.path.join(input_dir, "train.csv"))
    test = [int(r["number"]) for r in rows(os.path.join(input_dir, "test.csv"))]
    started = time.monotonic()
    model = module.Model()
    model.fit([int(r["number"]) for r in train], [int(r["even"]) for r in train])
    predictions = model.predict(test)
    elapsed = time.monotonic() - started

    with open(os.path.join(output_dir, "predictions.csv"), "w") as f:
        f.write("number,even\n")
        for number, even in zip(test, predictions):
            f.write(f"{number},{int(even)}\n")
    print(f"{len(predictions)} predictions in {elapsed:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
