"""report.json of the pipeline run through Python on AI4I: member numbering and the misclassified test rows."""
import json


def read_report(out):
    with open(out / "report.json", encoding="utf-8") as file:
        return json.load(file)


def test_report_members_count_from_one(python_run):
    result, out = python_run
    members = read_report(out)["training"]["members"]
    assert [member["member"] for member in members] == list(range(1, len(result.members) + 1))


def test_report_history_members_count_from_one(python_run):
    result, out = python_run
    history = read_report(out)["training"]["history"]
    assert history[0]["member"] == 1
    assert history[-1]["member"] == len(result.members)


def test_report_history_names_each_members_epochs(python_run):
    result, out = python_run
    history = read_report(out)["training"]["history"]
    expected = [k + 1 for k, member in enumerate(result.members) for _ in member.history]
    assert [record["member"] for record in history] == expected


def test_report_misclassified_rows_match_confusion(python_run):
    _, out = python_run
    report = read_report(out)
    confusion = report["metrics"]["test"]["confusion_matrix"]
    wrong = report["explanations"]["misclassified_test_rows"]
    assert len(wrong["false_negatives"]) == confusion[1][0]
    assert len(wrong["false_positives"]) == confusion[0][1]
