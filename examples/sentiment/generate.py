#!/usr/bin/env python3
"""Generates the sentiment example's data (run once; the output is committed).

Sentences are built from small hand-written phrase lists with a known label, so the
demo can measure label accuracy against a hidden truth. Deterministic (fixed seed).
"""
import json
import random

random.seed(20261125)
SUBJECTS = ["The hotel", "This phone", "The new album", "Our waiter", "The film", "The delivery", "This laptop",
            "The concert", "The museum tour", "The coffee", "The update", "The hiking trail", "The support team",
            "The book", "The train ride", "The pizza", "The headphones", "The conference", "The app", "The garden"]
POSITIVE = ["was absolutely wonderful", "exceeded every expectation", "made my whole week", "is a real delight",
            "was friendly and quick", "works perfectly", "was worth every penny", "left us smiling"]
NEGATIVE = ["was a complete disaster", "broke after two days", "was rude and slow", "is a waste of money",
            "left us disappointed", "crashes constantly", "was cold and bland", "ruined the evening"]
NEUTRAL = ["opens at nine on weekdays", "comes in three colours", "was delivered on Tuesday",
           "is about two hours long", "has a blue cover", "is next to the station", "weighs about a kilo",
           "was updated last month"]
LABELS = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}


def sentences():
    out = []
    for subject in SUBJECTS:
        for label, phrases in LABELS.items():
            for phrase in phrases:
                out.append((f"{subject} {phrase}.", label))
    random.shuffle(out)
    return out


def main():
    pool = sentences()
    units, golds = pool[:300], pool[300:330]
    # Golds must look like units (`crowdgate launch` checks it): one id scheme for both, the
    # golds' numbers drawn at random from the same range, so no id tells a gold apart.
    numbers = list(range(1, len(units) + len(golds) + 1))
    gold_numbers = sorted(random.sample(numbers, len(golds)))
    unit_numbers = [n for n in numbers if n not in set(gold_numbers)]
    with open("units.jsonl", "w") as f:
        for n, (text, _) in zip(unit_numbers, units):
            f.write(json.dumps({"id": f"s{n:03d}", "text": text}) + "\n")
    with open("truth.jsonl", "w") as f:
        for n, (text, label) in zip(unit_numbers, units):
            f.write(json.dumps({"inputs": {"id": f"s{n:03d}", "text": text}, "answer": {"label": label}}) + "\n")
    with open("golds.jsonl", "w") as f:
        for n, (text, label) in zip(gold_numbers, golds):
            f.write(json.dumps({"inputs": {"id": f"s{n:03d}", "text": text}, "answer": {"label": label}}) + "\n")


if __name__ == "__main__":
    main()
