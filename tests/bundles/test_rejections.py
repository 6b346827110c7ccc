"""One test per way a bundle must be refused: the precise reason, and the box (trust dir, state, install area,
work dir) exactly as it was before."""

from __future__ import annotations

import tarfile
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from bundlekit import EXPIRES, FILES, NOW, Box, build, craft, crafted, make_trust, manifest_bytes, payload

from sigforge.bundles.archive import canonical_info
from sigforge.bundles.build import sign_manifest
from sigforge.bundles.keys import MANIFEST_CONTEXT, SigningKey
from sigforge.bundles.state import TrustState
from sigforge.errors import BundleRejected
from sigforge.settings import BundleSettings


def rejected(box: Box, bundle: Path, reason: str, **kw: object) -> BundleRejected:
    with pytest.raises(BundleRejected) as info:
        box.install(bundle, **kw)  # type: ignore[arg-type]
    assert info.value.reason == reason, str(info.value)
    assert "\n" not in str(info.value)
    box.assert_untouched()
    return info.value


def test_a_good_bundle_installs_and_moves_the_state(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    dest = box.install(build(tmp_path, tc_keys))
    assert (dest / "bin/cc").read_bytes() == FILES["bin/cc"]
    assert (dest / "bin/cc").stat().st_mode & 0o777 == 0o755
    assert box.snapshot() != box.before


# ---- signatures -----------------------------------------------------------------------------------------------------


def test_unknown_key(box: Box, tmp_path: Path) -> None:
    rejected(box, build(tmp_path, [SigningKey.generate()]), "unknown-key")


def test_key_of_another_role_is_unknown_for_this_one(box: Box, tmp_path: Path, trust) -> None:  # type: ignore[no-untyped-def]
    rejected(box, build(tmp_path, trust[1]["release"]), "unknown-key")


def test_below_threshold(tmp_path: Path) -> None:
    root, keys = make_trust(n=2, thresholds={"toolchain": 2})
    box = Box(tmp_path, root)
    err = rejected(box, build(tmp_path, [*keys["toolchain"][:1], SigningKey.generate()]), "signature-threshold")
    assert "1 distinct trusted signature(s), 2 required" in err.message
    box.install(build(tmp_path, keys["toolchain"], name="ok.bundle"))  # both keys: accepted


def test_one_keys_signature_twice_counts_once(tmp_path: Path) -> None:
    root, keys = make_trust(n=2, thresholds={"toolchain": 2})
    box = Box(tmp_path, root)
    data = manifest_bytes()
    key = keys["toolchain"][0]
    sig = {"keyid": key.keyid, "sig": key.sign(data, MANIFEST_CONTEXT).hex()}
    twice = msgspec.json.encode({"signatures": [sig, sig]})
    rejected(box, craft(tmp_path / "x", data, twice, payload(FILES)), "signature-threshold")


def test_manifest_edited_after_signing(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    signatures = sign_manifest(manifest_bytes(), tc_keys)
    edited = manifest_bytes(version="1.0.1")
    rejected(box, craft(tmp_path / "x", edited, signatures, payload(FILES)), "bad-signature")


# ---- payload against manifest ---------------------------------------------------------------------------------------


def test_file_changed(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    members = payload({**FILES, "README": b"HI\n"})
    rejected(box, crafted(tmp_path / "x", tc_keys, members), "file-hash-mismatch")


def test_file_missing(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    members = payload({k: v for k, v in FILES.items() if k != "README"})
    rejected(box, crafted(tmp_path / "x", tc_keys, members), "missing-file")


def test_extra_file(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    rejected(box, crafted(tmp_path / "x", tc_keys, payload({**FILES, "zzz": b"extra"})), "extra-file")


def test_size_mismatch(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    rejected(box, crafted(tmp_path / "x", tc_keys, payload({**FILES, "README": b"hi there\n"})), "size-mismatch")


@pytest.mark.parametrize("name", ["payload/../evil", "payload/bin/../../../evil", "/etc/evil", "../evil"])
def test_path_traversal_in_the_archive(box: Box, tmp_path: Path, tc_keys: list[SigningKey], name: str) -> None:
    members = [*payload(FILES), (canonical_info(name, size=4), b"evil")]
    rejected(box, crafted(tmp_path / "x", tc_keys, members), "path-traversal")
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("path", ["../evil", "/etc/evil", "bin/./cc2", "bin//x"])
def test_path_traversal_in_the_manifest(box: Box, tmp_path: Path, tc_keys: list[SigningKey], path: str) -> None:
    files = {**FILES, path: b"evil"}
    rejected(box, crafted(tmp_path / "x", tc_keys, files=files), "path-traversal")


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../etc/passwd", "../.."])
def test_symlink_pointing_outside(box: Box, tmp_path: Path, tc_keys: list[SigningKey], target: str) -> None:
    members = [*payload(FILES), (canonical_info("payload/lib/evil", link=target), b"")]
    rejected(box, crafted(tmp_path / "x", tc_keys, members), "link-outside")


def test_declared_symlink_pointing_outside(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    links = [{"path": "lib/evil", "target": "../../etc/passwd"}]
    members = [*payload(FILES), (canonical_info("payload/lib/evil", link="../../etc/passwd"), b"")]
    rejected(box, crafted(tmp_path / "x", tc_keys, members, symlinks=links), "link-outside")


def test_undeclared_symlink_inside(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    members = [*payload(FILES), (canonical_info("payload/lib/cc", link="../bin/cc"), b"")]
    rejected(box, crafted(tmp_path / "x", tc_keys, members), "link-not-allowed")


def test_hardlink_pointing_outside(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    info = canonical_info("payload/lib/hard")
    info.type, info.linkname = tarfile.LNKTYPE, "/etc/shadow"
    rejected(box, crafted(tmp_path / "x", tc_keys, [*payload(FILES), (info, b"")]), "link-not-allowed")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.DIRTYPE])
def test_device_and_special_files(box: Box, tmp_path: Path, tc_keys: list[SigningKey], kind: bytes) -> None:
    info = canonical_info("payload/dev/sda")
    info.type, info.devmajor, info.devminor = kind, 8, 0
    rejected(box, crafted(tmp_path / "x", tc_keys, [*payload(FILES), (info, b"")]), "special-file")


def test_duplicate_entries(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    members = payload(FILES)
    rejected(box, crafted(tmp_path / "x", tc_keys, [*members, members[0]]), "duplicate-entry")


def test_non_canonical_member_header(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    members = payload(FILES)
    members[0][0].uid, members[0][0].uname = 1000, "mallory"
    rejected(box, crafted(tmp_path / "x", tc_keys, members), "member-metadata")


def test_world_writable_mode(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    data = manifest_bytes()
    doc = msgspec.json.decode(data)
    doc["files"][0]["mode"] = 0o4777
    bad = msgspec.json.encode(doc, order="sorted")
    rejected(box, craft(tmp_path / "x", bad, sign_manifest(bad, tc_keys), payload(FILES)), "bad-mode")


# ---- limits ---------------------------------------------------------------------------------------------------------


def test_decompression_bomb(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    bundle = build(tmp_path, tc_keys, files={**FILES, "zeros": bytes(4 * 1024**2)})
    rejected(box, bundle, "decompression-bomb", limits=BundleSettings(max_compression_ratio=100))


def test_oversized_archive(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    bundle = build(tmp_path, tc_keys)
    rejected(box, bundle, "archive-too-large", limits=BundleSettings(max_archive_bytes=bundle.stat().st_size - 1))


def test_unpacked_too_large(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    rejected(box, build(tmp_path, tc_keys), "unpacked-too-large", limits=BundleSettings(max_unpacked_bytes=100))


def test_too_many_files(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    rejected(box, build(tmp_path, tc_keys), "too-many-files", limits=BundleSettings(max_files=2))


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
@pytest.mark.parametrize("keep", [0.5, -3])
def test_truncated_archive(box: Box, tmp_path: Path, tc_keys: list[SigningKey], compression: str, keep: float) -> None:
    bundle = build(tmp_path, tc_keys, compression=compression)
    data = bundle.read_bytes()
    bundle.write_bytes(data[: int(len(data) * keep)] if keep > 0 else data[: int(keep)])
    rejected(box, bundle, "truncated")


# ---- time, versions, product --------------------------------------------------------------------------------------


def test_expired(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    rejected(box, build(tmp_path, tc_keys), "expired", now=EXPIRES)


def test_clock_set_backwards(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    old = build(tmp_path, tc_keys, name="old.bundle")  # valid from 2030-01-01 to 2031-01-01
    newer = build(tmp_path, tc_keys, name="new.bundle", version="2.0.0",
                  created=datetime(2031, 3, 1, tzinfo=UTC), expires=datetime(2032, 1, 1, tzinfo=UTC))  # fmt: skip
    box.install(newer, now=datetime(2031, 3, 2, tzinfo=UTC))  # the floor moves to 2031-03-01
    box.before = box.snapshot()
    # The clock goes back to mid-2030, where `old` would look valid; the persisted floor says it has expired.
    err = rejected(box, old, "expired", now=NOW, installed=None)
    assert "behind the persisted floor" in err.message


def test_rollback_below_installed(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    rejected(box, build(tmp_path, tc_keys), "rollback", installed="1.2.0")


def test_release_of_the_installed_version_is_a_rollback(box: Box, tmp_path: Path, trust) -> None:  # type: ignore[no-untyped-def]
    bundle = build(tmp_path, trust[1]["release"], kind="release", name="sigforge")
    rejected(box, bundle, "rollback", installed="1.0.0")


def test_toolchain_reimport_of_the_same_version_is_allowed(box: Box, tmp_path: Path, tc_keys) -> None:  # type: ignore[no-untyped-def]
    assert box.install(build(tmp_path, tc_keys), installed="1.0.0").is_dir()


def test_below_the_persisted_version_floor(tmp_path: Path, trust) -> None:  # type: ignore[no-untyped-def]
    state = TrustState(time_floor=datetime(2029, 1, 1, tzinfo=UTC), versions={"toolchain/gcc-arm": "1.5.0"})
    box = Box(tmp_path, trust[0], state)
    rejected(box, build(tmp_path, trust[1]["toolchain"]), "rollback")  # nothing installed, but 1.5.0 was seen


def test_min_installed_version(box: Box, tmp_path: Path, trust) -> None:  # type: ignore[no-untyped-def]
    bundle = build(tmp_path, trust[1]["release"], kind="release", name="sigforge", version="3.0.0",
                   min_installed_version="2.0.0")  # fmt: skip
    rejected(box, bundle, "min-installed-version", installed="1.9.9")


def test_wrong_product(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    rejected(box, build(tmp_path, tc_keys), "wrong-product", product="otherbox")


def test_wrong_architecture(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    rejected(box, build(tmp_path, tc_keys, host_arch="aarch64"), "wrong-architecture", arch="x86_64")


def test_wrong_kind(box: Box, tmp_path: Path, trust) -> None:  # type: ignore[no-untyped-def]
    rejected(box, build(tmp_path, trust[1]["release"], kind="media"), "wrong-kind", kind="toolchain")


# ---- a bundle never brings its own trust ----------------------------------------------------------------------------


def test_manifest_field_with_keys(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    doc = msgspec.json.decode(manifest_bytes())
    doc["keys"] = {SigningKey.generate().keyid: {"keytype": "ed25519", "public": "00" * 32}}
    data = msgspec.json.encode(doc, order="sorted")
    rejected(box, craft(tmp_path / "x", data, sign_manifest(data, tc_keys), payload(FILES)), "own-trust")


def test_key_file_in_the_payload(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    pem = SigningKey.generate().public.pem()
    rejected(box, build(tmp_path, tc_keys, files={**FILES, "share/vendor.txt": pem}), "own-trust")


def test_key_file_name_in_the_manifest(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    rejected(box, crafted(tmp_path / "x", tc_keys, files={**FILES, "etc/release.pub": b"x"}), "own-trust")


def test_root_metadata_beside_the_manifest(box: Box, tmp_path: Path, tc_keys: list[SigningKey], trust) -> None:  # type: ignore[no-untyped-def]
    from sigforge.bundles.trust import encode_root

    root = encode_root(trust[0])
    members = [*payload(FILES), (canonical_info("root.json", size=len(root)), root)]
    rejected(box, crafted(tmp_path / "x", tc_keys, members), "own-trust")


def test_signatures_carrying_a_public_key(box: Box, tmp_path: Path, tc_keys: list[SigningKey]) -> None:
    data = manifest_bytes()
    key = tc_keys[0]
    sig = {"keyid": key.keyid, "sig": key.sign(data, MANIFEST_CONTEXT).hex(), "public_key": key.public.raw.hex()}
    rejected(box, craft(tmp_path / "x", data, msgspec.json.encode({"signatures": [sig]}), payload(FILES)), "own-trust")
