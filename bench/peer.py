#!/usr/bin/env python3
"""The lean script `m365sync bench --peer` measures the sync against.

It makes the pull m365sync makes for the default datasets (organisation, licences with their
subscriptions, every user by delta query with the same $select, the mailbox usage report) and
writes what it reads into SQLite with bulk inserts. The datasets run side by side, one thread
each, and one writer thread commits each page as it arrives, so fetching overlaps writing.
It parses pages with orjson when the interpreter has it (as a lean script worth the name would)
and with the standard library's json otherwise, so that it runs wherever python3 does; the
report says which.

Prints one JSON line: the seconds from the token request to the last commit, and the rows kept.
"""

import argparse
import csv
import http.client
import io
import json
import os
import queue
import sqlite3
import sys
import threading
import time
import urllib.parse

try:
    import orjson

    loads = orjson.loads
    PARSER = "orjson"
except ImportError:
    loads = json.loads
    PARSER = "json"

PAGE_SIZE = 999
RETRIES = 5


class PullError(Exception):
    pass


class Session:
    """Keep-alive connections of one thread, one per host."""

    def __init__(self, token, counter):
        self.token = token
        self.counter = counter
        self.connections = {}

    def request(self, method, url, body=None, headers=None):
        parts = urllib.parse.urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port)
        target = parts.path + ("?" + parts.query if parts.query else "")
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        for attempt in range(RETRIES + 1):
            connection = self.connections.get(key)
            if connection is None:
                kind = (
                    http.client.HTTPSConnection
                    if parts.scheme == "https"
                    else http.client.HTTPConnection
                )
                connection = kind(parts.hostname, parts.port, timeout=600)
                self.connections[key] = connection
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError):
                # A keep-alive connection the server closed: open a new one once more.
                connection.close()
                del self.connections[key]
                if attempt == RETRIES:
                    raise
                continue
            self.counter.add()
            if response.status in (429, 503, 504) and attempt < RETRIES:
                time.sleep(float(response.getheader("Retry-After") or 2**attempt))
                continue
            return response.status, response, data
        raise PullError(f"{url}: no answer after {RETRIES} retries")

    def get_json(self, url, headers=None):
        status, _, data = self.request("GET", url, headers=headers)
        if status != 200:
            raise PullError(f"GET {url} answered {status}: {data[:300]!r}")
        return loads(data)

    def pages(self, url, headers=None):
        while url:
            page = self.get_json(url, headers)
            yield page.get("value", [])
            url = page.get("@odata.nextLink")


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.value = 0

    def add(self):
        with self.lock:
            self.value += 1


SCHEMA = """
CREATE TABLE organization (id TEXT PRIMARY KEY, display_name TEXT, country TEXT, domains TEXT);
CREATE TABLE license (sku_id TEXT PRIMARY KEY, part_number TEXT, status TEXT,
    consumed INTEGER, enabled INTEGER, service_plans TEXT);
CREATE TABLE subscription (id TEXT PRIMARY KEY, sku_id TEXT, status TEXT, is_trial INTEGER,
    next_lifecycle TEXT);
CREATE TABLE contact (id TEXT PRIMARY KEY, upn TEXT, display_name TEXT, given_name TEXT,
    surname TEXT, mail TEXT, proxy_addresses TEXT, job_title TEXT, department TEXT,
    office TEXT, mobile TEXT, business_phones TEXT, enabled INTEGER, user_type TEXT);
CREATE TABLE contact_license (contact_id TEXT, sku_id TEXT, PRIMARY KEY (contact_id, sku_id));
CREATE TABLE mailbox (upn TEXT PRIMARY KEY, display_name TEXT, last_activity TEXT,
    items INTEGER, storage_bytes INTEGER, warning_quota INTEGER, send_quota INTEGER);
CREATE TABLE checkpoint (resource TEXT PRIMARY KEY, link TEXT);
"""

INSERTS = {
    "organization": "INSERT OR REPLACE INTO organization VALUES (?, ?, ?, ?)",
    "license": "INSERT OR REPLACE INTO license VALUES (?, ?, ?, ?, ?, ?)",
    "subscription": "INSERT OR REPLACE INTO subscription VALUES (?, ?, ?, ?, ?)",
    "contact": "INSERT OR REPLACE INTO contact VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "contact_license": "INSERT OR REPLACE INTO contact_license VALUES (?, ?)",
    "mailbox": "INSERT OR REPLACE INTO mailbox VALUES (?, ?, ?, ?, ?, ?, ?)",
    "checkpoint": "INSERT OR REPLACE INTO checkpoint VALUES (?, ?)",
}


def writer(path, work, kept):
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    while True:
        batch = work.get()
        if batch is None:
            break
        with db:
            for table, rows in batch:
                db.executemany(INSERTS[table], rows)
                kept[table] = kept.get(table, 0) + len(rows)
    db.close()


def number(cell):
    return int(cell) if cell not in (None, "") else None


def pull_organization(session, args, work):
    rows = [
        (
            o["id"],
            o.get("displayName"),
            o.get("countryLetterCode"),
            json.dumps([d.get("name") for d in o.get("verifiedDomains") or []]),
        )
        for page in session.pages(
            f"{args.url}/v1.0/organization?$select={args.organization_select}"
        )
        for o in page
    ]
    work.put([("organization", rows)])


def pull_licenses(session, args, work):
    skus = [
        (
            s["skuId"],
            s.get("skuPartNumber"),
            s.get("capabilityStatus"),
            s.get("consumedUnits"),
            (s.get("prepaidUnits") or {}).get("enabled"),
            json.dumps(
                [p.get("servicePlanName") for p in s.get("servicePlans") or []]
            ),
        )
        for page in session.pages(
            f"{args.url}/v1.0/subscribedSkus?$select={args.sku_select}"
        )
        for s in page
    ]
    subscriptions = [
        (
            s["id"],
            s.get("skuId"),
            s.get("status"),
            1 if s.get("isTrial") else 0,
            s.get("nextLifecycleDateTime"),
        )
        for page in session.pages(
            f"{args.url}/v1.0/directory/subscriptions?$select={args.subscription_select}"
        )
        for s in page
    ]
    work.put([("license", skus), ("subscription", subscriptions)])


def pull_users(session, args, work):
    url = f"{args.url}/v1.0/users/delta?$select={args.user_select}"
    headers = {"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}
    while url:
        page = session.get_json(url, headers)
        contacts, assignments = [], []
        for u in page.get("value", []):
            contacts.append(
                (
                    u["id"],
                    u.get("userPrincipalName"),
                    u.get("displayName"),
                    u.get("givenName"),
                    u.get("surname"),
                    u.get("mail"),
                    json.dumps(u.get("proxyAddresses") or []),
                    u.get("jobTitle"),
                    u.get("department"),
                    u.get("officeLocation"),
                    u.get("mobilePhone"),
                    json.dumps(u.get("businessPhones") or []),
                    1 if u.get("accountEnabled") else 0,
                    u.get("userType"),
                )
            )
            for assigned in u.get("assignedLicenses") or []:
                assignments.append((u["id"], assigned.get("skuId")))
        batch = [("contact", contacts), ("contact_license", assignments)]
        url = page.get("@odata.nextLink")
        if not url and page.get("@odata.deltaLink"):
            batch.append(("checkpoint", [("users", page["@odata.deltaLink"])]))
        work.put(batch)


def pull_mailboxes(session, args, work):
    url = f"{args.url}/v1.0/reports/getMailboxUsageDetail(period='D7')"
    status, response, data = session.request("GET", url)
    if status in (301, 302, 303, 307, 308):
        download = response.getheader("Location")
        # The download URL carries its own authorisation, as Microsoft's does.
        plain = Session(None, session.counter)
        status, _, data = plain.request("GET", download)
        url = download
    if status != 200:
        raise PullError(f"GET {url} answered {status}: {data[:300]!r}")
    text = data.decode("utf-8-sig")
    rows = [
        (
            r.get("User Principal Name"),
            r.get("Display Name"),
            r.get("Last Activity Date"),
            number(r.get("Item Count")),
            number(r.get("Storage Used (Byte)")),
            number(r.get("Issue Warning Quota (Byte)")),
            number(r.get("Prohibit Send Quota (Byte)")),
        )
        for r in csv.DictReader(io.StringIO(text))
    ]
    work.put([("mailbox", rows)])


def token(args, counter):
    session = Session(None, counter)
    body = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": args.client_id,
            "client_secret": os.environ[args.secret_env],
            "scope": "https://graph.microsoft.com/.default",
        }
    )
    status, _, data = session.request(
        "POST",
        f"{args.url}/{args.tenant}/oauth2/v2.0/token",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 200:
        raise PullError(f"the token request answered {status}: {data[:300]!r}")
    return loads(data)["access_token"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Graph and login base URL")
    parser.add_argument("--tenant", required=True, help="tenant id")
    parser.add_argument("--client-id", required=True, help="application (client) id")
    parser.add_argument(
        "--secret-env", required=True, help="environment variable holding the secret"
    )
    parser.add_argument("--db", required=True, help="SQLite file to create")
    parser.add_argument("--user-select", required=True)
    parser.add_argument("--sku-select", required=True)
    parser.add_argument("--subscription-select", required=True)
    parser.add_argument("--organization-select", required=True)
    args = parser.parse_args()
    args.url = args.url.rstrip("/")
    if args.secret_env not in os.environ:
        sys.exit(f"peer: the environment variable {args.secret_env} is not set")

    started = time.monotonic()
    counter = Counter()
    access = token(args, counter)
    work, kept = queue.Queue(maxsize=16), {}
    write = threading.Thread(target=writer, args=(args.db, work, kept))
    write.start()
    failures = []

    def run(pull):
        try:
            pull(Session(access, counter), args, work)
        except Exception as error:  # reported below, after the writer is stopped
            failures.append(f"{pull.__name__}: {error}")

    pulls = [pull_organization, pull_licenses, pull_users, pull_mailboxes]
    threads = [threading.Thread(target=run, args=(pull,)) for pull in pulls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    work.put(None)
    write.join()
    if failures:
        sys.exit("peer: " + "; ".join(failures))
    print(
        json.dumps(
            {
                "seconds": time.monotonic() - started,
                "requests": counter.value,
                "organizations": kept.get("organization", 0),
                "licenses": kept.get("license", 0),
                "users": kept.get("contact", 0),
                "mailboxes": kept.get("mailbox", 0),
                "parser": PARSER,
            }
        )
    )


if __name__ == "__main__":
    main()
