"""A participant's model: learns the label of each last digit."""


class Model:
    def fit(self, numbers, labels):
        votes = {}
        for number, label in zip(numbers, labels):
            votes.setdefault(number % 10, []).append(label)
        self.by_digit = {d: max(set(v), key=v.count) for d, v in votes.items()}
        self.default = max(set(labels), key=labels.count) if labels else 0

    def predict(self, numbers):
        return [self.by_digit.get(n % 10, self.default) for n in numbers]
