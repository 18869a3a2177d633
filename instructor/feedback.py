"""An nbgrader preprocessor for ``generate_feedback``: tracebacks without hidden-test source.

nbgrader's ClearHiddenTests removes the hidden region from a cell's source, but the
cell's error output still holds IPython's traceback, which quotes the lines around
the failing call: the hidden test itself (nbgrader #917). Here every error of a cell
with a hidden-test region, and every failed check (``CheckFailed``), is reduced to
``name: message``: the grader's feedback, without the code around it. Runs before
ClearHiddenTests, while the region is still there to be seen.
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor

HIDDEN = "BEGIN HIDDEN TESTS"


class ShortenTracebacks(NbGraderPreprocessor):
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        hidden = HIDDEN in cell.source
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and (hidden or output.get("ename") == "CheckFailed"):
                output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
