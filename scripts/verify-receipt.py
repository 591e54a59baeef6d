#!/usr/bin/env python3
"""Checks the evidence of a packtrust receipt without packtrust's code: Python 3 (standard
library only) and OpenSSL 3.

    python3 verify-receipt.py RECEIPT.json VERIFIER_KEY [--leaf FILE]

RECEIPT.json is a receipt as `packtrust-upload` keeps it (or `-` to read it from standard input);
this reads its evidence and nothing else: the hub's `Packtrust-Evidence` response header
(`response.headers["packtrust-evidence"]`, base64url of a JSON object), or an `evidence` member:

    {"evidence": {"seq": 7, "leafIndex": 6, "leafHash": "<base64, 32 bytes>",
                  "checkpoint": "<signed note>", "inclusionProof": ["<base64, 32 bytes>", ...]}}

VERIFIER_KEY is the hub's checkpoint key as published, `<name>+<hex key ID>+<base64 key>`
(c2sp.org/signed-note, "Verifier keys"; golang.org/x/mod/sumdb/note reads the same string).

It checks, each step written here from its specification:
  1. the checkpoint is a signed note (c2sp.org/signed-note) with a signature line of that key, and
     `openssl pkeyutl -verify` accepts its Ed25519 signature over the note text;
  2. the note text is a checkpoint (c2sp.org/tlog-checkpoint): origin, tree size, base64 root,
     and the hub's `time` line;
  3. the inclusion proof leads from the leaf hash at leafIndex to that root (RFC 9162 §2.1.3.2);
  4. with --leaf FILE, the leaf hash is that of the file's bytes: SHA-256(0x00 || bytes).

Exit status: 0 the evidence holds; 1 it does not (the reason on standard error); 2 the receipt or
the key cannot be read; 3 OpenSSL (3.0 or later, for -rawin) cannot be run.
"""

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HASH_SIZE = 32
# c2sp.org/signed-note: "0x01 — Ed25519 signatures as specified by this document."
ED25519_TYPE = 0x01
# SubjectPublicKeyInfo DER of an Ed25519 key (RFC 8410), before its 32 bytes.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
TIME_LINE = re.compile(r"^time (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)$")


class Unreadable(Exception):
    """The receipt or the key cannot be read (exit 2)."""


class Refused(Exception):
    """The evidence does not hold (exit 1)."""


class NoOpenSSL(Exception):
    """OpenSSL cannot be run (exit 3)."""


def b64decode(text, what, size=None):
    """Standard base64 with padding (RFC 4648 §4), in its canonical form."""
    if not isinstance(text, str):
        raise Unreadable(f"{what} is not a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Unreadable(f"{what} is not base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise Unreadable(f"{what} is not base64 in its canonical form")
    if size is not None and len(data) != size:
        raise Unreadable(f"{what} is {len(data)} bytes, not {size}")
    return data


def key_id(name, typed_key):
    """c2sp.org/signed-note: SHA-256(key name || 0x0A || signature type || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + typed_key).digest()[:4]


def valid_key_name(name):
    """Key names are non-empty, without Unicode spaces or "+" (c2sp.org/signed-note)."""
    return name != "" and "+" not in name and not any(c.isspace() for c in name) and valid_text(name)


def valid_text(text):
    """Notes are UTF-8 without ASCII control characters other than newline."""
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_verifier_key(vkey):
    """`<name>+<hex key ID>+<base64(0x01 || 32-byte Ed25519 key)>`: the name and the raw key."""
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise Unreadable("the verifier key is not <name>+<key ID>+<key>")
    name, id_hex, key64 = parts
    if not valid_key_name(name):
        raise Unreadable("the verifier key's name is empty or has spaces, '+' or control characters")
    if not re.fullmatch(r"[0-9a-fA-F]{8}", id_hex):
        raise Unreadable("the verifier key's key ID is not 8 hex digits")
    typed = b64decode(key64, "the verifier key's key")
    if len(typed) != 33 or typed[0] != ED25519_TYPE:
        raise Unreadable("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)")
    if bytes.fromhex(id_hex) != key_id(name, typed):
        raise Unreadable("the verifier key's key ID is not that of its name and key")
    return name, bytes.fromhex(id_hex), typed[1:]


def split_note(note):
    """A signed note: its text (up to the last blank line) and its signature lines."""
    if not isinstance(note, str) or not valid_text(note):
        raise Unreadable("the checkpoint is not note text (UTF-8 without control characters)")
    split = note.rfind("\n\n")
    if split < 0:
        raise Unreadable("the checkpoint has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if block == "" or not block.endswith("\n"):
        raise Unreadable("the checkpoint's signature lines do not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > 100:
        raise Unreadable("the checkpoint has more than 100 signatures")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise Unreadable("a signature line of the checkpoint does not start with an em dash and a space")
        fields = line[len(SIGNATURE_PREFIX) :].split(" ")
        if len(fields) != 2 or not valid_key_name(fields[0]):
            raise Unreadable("a signature line of the checkpoint is not '— <key name> <base64 signature>'")
        signature = b64decode(fields[1], "a signature of the checkpoint")
        if len(signature) < 5:
            raise Unreadable("a signature of the checkpoint is shorter than its key ID")
        signatures.append((fields[0], signature[:4], signature[4:]))
    return text, signatures


def openssl_verify(public_key, message, signature):
    """Ed25519 verification by `openssl pkeyutl -verify -rawin`: True, False, or NoOpenSSL."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise NoOpenSSL("openssl is not on the PATH")
    if len(signature) != 64:
        return False
    with tempfile.TemporaryDirectory(prefix="verify-receipt-") as tmp:
        pem = os.path.join(tmp, "key.pem")
        body = os.path.join(tmp, "body")
        sig = os.path.join(tmp, "sig")
        with open(pem, "w", encoding="ascii") as f:
            der64 = base64.b64encode(ED25519_SPKI_PREFIX + public_key).decode("ascii")
            f.write(f"-----BEGIN PUBLIC KEY-----\n{der64}\n-----END PUBLIC KEY-----\n")
        with open(body, "wb") as f:
            f.write(message)
        with open(sig, "wb") as f:
            f.write(signature)
        command = [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin", "-in", body, "-sigfile", sig]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode == 0 and "Signature Verified Successfully" in result.stdout:
        return True
    if "Signature Verification Failure" in result.stdout:
        return False
    detail = (result.stderr or result.stdout).strip().splitlines()
    raise NoOpenSSL(f"openssl could not verify (OpenSSL 3.0 or later is needed): {detail[0] if detail else 'no output'}")


def parse_checkpoint(text):
    """c2sp.org/tlog-checkpoint: origin, size, base64 root; then the hub's time line."""
    lines = text.split("\n")[:-1]
    if len(lines) != 4:
        raise Unreadable(f"the checkpoint has {len(lines)} lines, not 4 (origin, size, root, time)")
    origin, size, root, time = lines
    if origin == "":
        raise Unreadable("the checkpoint's origin is empty")
    if not re.fullmatch(r"0|[1-9][0-9]*", size):
        raise Unreadable("the checkpoint's size is not a decimal number without leading zeroes")
    time_match = TIME_LINE.fullmatch(time)
    if time_match is None:
        raise Unreadable("the checkpoint's fourth line is not 'time <UTC time>'")
    return origin, int(size), b64decode(root, "the checkpoint's root", HASH_SIZE), time_match.group(1)


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, inclusion_path):
    """RFC 9162 §2.1.3.2, "Verifying an Inclusion Proof": the root, or None where it fails."""
    # 1. If leaf_index is greater than or equal to tree_size, fail.
    if leaf_index >= tree_size:
        return None
    # 2. Set fn to leaf_index and sn to tree_size - 1. 3. Set r to hash.
    fn, sn, r = leaf_index, tree_size - 1, leaf_hash
    # 4. For each value p in the inclusion_path array:
    for p in inclusion_path:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return None
        # b. If LSB(fn) is set, or if fn is equal to sn, then: r = HASH(0x01 || p || r), and if
        #    LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        # Otherwise: r = HASH(0x01 || r || p).
        else:
            r = node_hash(r, p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. sn must be 0 (and r the root_hash, which the caller compares).
    return r if sn == 0 else None


def read_evidence(path):
    try:
        if path == "-":
            receipt = json.load(sys.stdin)
        else:
            with open(path, encoding="utf-8") as f:
                receipt = json.load(f)
    except (OSError, ValueError) as e:
        raise Unreadable(f"cannot read the receipt {path}: {e}") from None
    evidence = receipt.get("evidence") if isinstance(receipt, dict) else None
    headers = (receipt.get("response") or {}).get("headers") if isinstance(receipt, dict) else None
    header = headers.get("packtrust-evidence") if isinstance(headers, dict) else None
    if header is not None:
        # What the hub sent is what counts: a file with both could make two tools check two leaves.
        if evidence is not None:
            raise Unreadable("the receipt has both an 'evidence' object and a packtrust-evidence header")
        if not isinstance(header, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", header):
            raise Unreadable("the receipt's packtrust-evidence header is not base64url")
        try:
            evidence = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        except (ValueError, binascii.Error) as e:
            raise Unreadable(f"the receipt's packtrust-evidence header cannot be read: {e}") from None
    if not isinstance(evidence, dict):
        raise Unreadable("the receipt has no 'evidence' object and no packtrust-evidence header")
    index = evidence.get("leafIndex")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise Unreadable("evidence.leafIndex is not a non-negative integer")
    seq = evidence.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
        raise Unreadable("evidence.seq is not an integer")
    proof = evidence.get("inclusionProof")
    if not isinstance(proof, list):
        raise Unreadable("evidence.inclusionProof is not a list")
    if not isinstance(evidence.get("checkpoint"), str):
        raise Unreadable("evidence.checkpoint is not a string")
    return {
        "seq": seq,
        "index": index,
        "leaf_hash": b64decode(evidence.get("leafHash"), "evidence.leafHash", HASH_SIZE),
        "proof": [b64decode(p, f"evidence.inclusionProof[{i}]", HASH_SIZE) for i, p in enumerate(proof)],
        "checkpoint": evidence["checkpoint"],
    }


def check(args):
    name, kid, public_key = parse_verifier_key(args.verifier_key)
    evidence = read_evidence(args.receipt)
    text, signatures = split_note(evidence["checkpoint"])
    # Signature lines of other keys are ignored; every line of this key must verify.
    own = [sig for (n, i, sig) in signatures if n == name and i == kid]
    if not own:
        raise Refused(f"the checkpoint has no signature by {name} ({kid.hex()})")
    for sig in own:
        if not openssl_verify(public_key, text.encode("utf-8"), sig):
            raise Refused(f"the checkpoint's signature by {name} ({kid.hex()}) does not verify")
    origin, size, root, time = parse_checkpoint(text)
    index = evidence["index"]
    if args.leaf is not None:
        try:
            with open(args.leaf, "rb") as f:
                data = f.read()
        except OSError as e:
            raise Unreadable(f"cannot read the leaf {args.leaf}: {e}") from None
        if hashlib.sha256(b"\x00" + data).digest() != evidence["leaf_hash"]:
            raise Refused(f"the leaf hash is not SHA-256(0x00 || {args.leaf})")
    if index >= size:
        raise Refused(f"leaf {index} is not in the checkpoint's tree of {size} leaves")
    if root_from_inclusion_proof(index, size, evidence["leaf_hash"], evidence["proof"]) != root:
        raise Refused(f"the inclusion proof does not lead from leaf {index} to the checkpoint's root")
    seq = f" (seq {evidence['seq']})" if evidence["seq"] is not None else ""
    print(f"OK: leaf {index}{seq} is in {origin} at tree size {size}")
    print(f"checkpoint time {time}, root {base64.b64encode(root).decode('ascii')}")
    print(f"signed by {name} ({kid.hex()}), verified with openssl")


def main():
    parser = argparse.ArgumentParser(
        description="Checks the evidence of a packtrust receipt: checkpoint signature and inclusion proof."
    )
    parser.add_argument("receipt", help="the receipt, a JSON file (- for standard input)")
    parser.add_argument("verifier_key", help="the hub's checkpoint key, <name>+<hex key ID>+<base64 key>")
    parser.add_argument("--leaf", help="a file whose bytes are the leaf: its hash must be the receipt's")
    args = parser.parse_args()
    try:
        check(args)
    except Refused as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    except Unreadable as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    except NoOpenSSL as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
