"""`scan`: the image gate. Checks that the OCI layout holds exactly the image's digest and that every
waiver of the allow-list has a reason and an expiry; writes a CycloneDX SBOM (sbom.cdx.json) and
Trivy's JSON report (vulnerabilities.json) into --reports; fails with exit 3 on HIGH or CRITICAL
findings the allow-list does not waive, naming them and any waiver that expired. Exit 1 is Trivy's
own error (no database, unreadable input): the image was not judged."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from pipeline import allowlist, arguments, ocilayout, trivy
from pipeline.errors import Findings, UsageError
from pipeline.gitremote import say

SBOM = "sbom.cdx.json"
REPORT = "vulnerabilities.json"


def register(subparsers) -> None:
    parser = subparsers.add_parser("scan", help="scan an image with Trivy: SBOM, report, gate", description=__doc__)
    parser.add_argument("--layout", required=True, type=Path, help="the image's OCI layout directory")
    parser.add_argument("--image", required=True, type=arguments.image, help="REPOSITORY@sha256:<hex> it must hold")
    parser.add_argument("--allow-list", required=True, type=Path, help="Trivy's .trivyignore.yaml of waivers")
    parser.add_argument("--reports", required=True, type=Path, help="directory for the SBOM and the report")
    parser.add_argument(
        "--skip-db-update", action="store_true", help="use the database in the cache as it is; download nothing"
    )
    parser.add_argument("--db-repository", type=arguments.oci_reference, help="OCI repository of Trivy's database")
    parser.add_argument("--cache-dir", type=Path, help="Trivy's cache; the database is its db/ folder")
    parser.add_argument("--insecure", action="store_true", help="plain HTTP or unverified TLS to --db-repository")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    _, digest = args.image
    waivers = allowlist.read(args.allow_list)
    ocilayout.check_holds(args.layout, digest)
    try:
        args.reports.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"argument --reports: {args.reports} cannot be made ({error.strerror}); give a writable path"
        ) from None
    today = datetime.datetime.now(datetime.UTC).date()
    expired = [waiver for waiver in waivers if waiver.expired(today)]
    for waiver in expired:
        say(f"the waiver of {waiver.id} expired on {waiver.expires}: it suppresses nothing")

    db = trivy.Database(args.cache_dir, args.skip_db_update, args.db_repository, args.insecure)
    trivy.sbom(args.layout, db, args.reports / SBOM)
    found, waived = trivy.scan(args.layout, db, args.allow_list, args.reports / REPORT)
    by_id = {waiver.id: waiver for waiver in waivers}
    for finding in waived:
        entry = by_id.get(finding.id)
        until = f" until {entry.expires}: {entry.statement}" if entry else ""
        say(f"waived {finding.id} in {finding.package}{until}")
    for finding in found:
        print(finding.line())
    if found:
        ids = sorted({finding.id for finding in found})
        lapsed = [f"{waiver.id} (expired {waiver.expires})" for waiver in expired if waiver.id in ids]
        raise Findings(
            f"{len(ids)} HIGH/CRITICAL finding(s) not waived: {', '.join(ids)}"
            + (f"; expired waivers: {', '.join(lapsed)}" if lapsed else "")
            + f"; fix them, or waive them in {args.allow_list} with a statement and expired_at"
        )
    say(f"no HIGH or CRITICAL finding outside {args.allow_list}; SBOM and report in {args.reports}")
    return 0
