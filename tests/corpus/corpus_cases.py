"""Every case of the bad-input corpus, by id (generated at test time, nothing committed)."""

from __future__ import annotations

import corpus_cases_arrays
import corpus_cases_cli
import corpus_cases_files
import corpus_cases_imu
import corpus_cases_setup
from corpus_framework import Case


def all_cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for module in (corpus_cases_files, corpus_cases_imu, corpus_cases_arrays, corpus_cases_setup, corpus_cases_cli):
        for case in module.cases():
            assert case.id not in cases, f"duplicate case id {case.id}"
            cases[case.id] = case
    return cases
