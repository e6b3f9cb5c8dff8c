"""IMU CSV files: missing/extra/non-numeric columns, 10^6 columns, BOMs, delimiters, unicode."""

from __future__ import annotations

from typing import Any

import corpus_builders as B
from corpus_framework import Case, Ctx

HEADER = "accl_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z"


def _csv(label: str, text: str | bytes, expect: str = "refuse", same_as_plain: bool = False) -> Case:
    data = text.encode("utf-8") if isinstance(text, str) else text

    def run(ctx: Ctx) -> Any:
        return ctx.embed(imu=[str(ctx.file(f"imu_{label}.csv", data))]).imu

    reference = (lambda ctx: ctx.embed(imu=[str(ctx.file("imu_plain.csv", B.csv_text()))]).imu) if same_as_plain \
        else None
    return Case(f"imu/csv/{label}", "imu", "ok" if same_as_plain else expect, run,
                names=("imu[0]", f"imu_{label}.csv"), reference=reference)


def cases() -> list[Case]:
    plain = B.csv_text()
    body = plain.split("\n", 1)[1]
    reordered = "gyro_x,gyro_y,gyro_z,accl_x,accl_y,accl_z\n" + "\n".join(
        ",".join(r.split(",")[3:] + r.split(",")[:3]) for r in body.strip().split("\n")) + "\n"
    return [
        _csv("utf8-bom", "\ufeff" + plain, same_as_plain=True),
        _csv("crlf", plain.replace("\n", "\r\n"), same_as_plain=True),
        _csv("semicolons", plain.replace(",", ";"), same_as_plain=True),
        _csv("extra-timestamp-column", "t," + HEADER + "\n" + "\n".join(
            f"{i}," + r for i, r in enumerate(body.strip().split("\n"))) + "\n", same_as_plain=True),
        _csv("reordered-columns", reordered, same_as_plain=True),
        _csv("utf16-bom", plain.encode("utf-16"), expect="either"),
        _csv("missing-gyro-z", B.csv_text(HEADER.rsplit(",", 1)[0], cols=5)),
        _csv("header-only", HEADER + "\n"),
        _csv("no-header", body),
        _csv("non-numeric-cell", plain.replace("0.", "zz", 1)),
        _csv("nan-cell", plain.replace("\n", "\nnan,0,0,0,0,0\n", 1)),
        _csv("inf-cell", plain.replace("\n", "\ninf,0,0,0,0,0\n", 1)),
        _csv("1e400-cell", plain.replace("\n", "\n1e400,0,0,0,0,0\n", 1)),
        _csv("1e38-values", plain + "1e38,1e38,1e38,1e38,1e38,1e38\n", "either"),
        _csv("short-row", plain + "1,2,3\n"),
        _csv("long-row", plain + "1,2,3,4,5,6,7,8\n", expect="either"),
        _csv("million-columns", ",".join(f"c{i}" for i in range(1_000_000)) + "\n" + "1," * 999_999 + "1\n"),
        _csv("million-columns-with-names", HEADER + "," + ",".join(f"c{i}" for i in range(1_000_000)) + "\n"
             + "0.5," * 1_000_005 + "0.5\n", expect="either"),
        _csv("unicode-garbage-header", "\u202e\u00e4\U0001f600," * 6 + "\n1,2,3,4,5,6\n"),
        _csv("binary-nul", b"\x00" * 5000),
        _csv("quoted-newlines", '"accl_x\n",accl_y,accl_z,gyro_x,gyro_y,gyro_z\n1,2,3,4,5,6\n', expect="either"),
        _csv("duplicate-columns", HEADER + ",accl_x\n" + "\n".join(r + ",9" for r in body.strip().split("\n")) + "\n",
             expect="either"),
    ]
