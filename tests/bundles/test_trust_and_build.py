"""Root rotation, first install, the state file, build determinism, extraction safety, byte flips."""

from __future__ import annotations

import gzip
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bundlekit import FILES, LIMITS, NOW, Box, build, make_trust
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigforge.bundles import extract_verified, install_root, load_root, verify_bundle
from sigforge.bundles.keys import SigningKey
from sigforge.bundles.state import TrustState, load_state, save_state
from sigforge.bundles.trust import ROLES, check_rotation, fingerprint, make_root_metadata, sign_root
from sigforge.bundles.version import Version
from sigforge.errors import BundleRejected, Conflict, IntegrityError, InvalidInput, TrustRootRejected

LATER = datetime(2041, 1, 1, tzinfo=UTC)


def rotated(old: list[SigningKey], new_keys: list[SigningKey], signers: list[SigningKey], version: int = 2):  # type: ignore[no-untyped-def]
    others = {r: [SigningKey.generate().public] for r in ROLES}
    roles = {**others, "root": [k.public for k in new_keys]}
    meta = make_root_metadata(version=version, expires=LATER, role_keys_=roles, thresholds={"root": 2})
    return sign_root(meta, signers)


@pytest.fixture
def two_of_three():  # type: ignore[no-untyped-def]
    return make_trust(n=3, thresholds={"root": 2})


def test_rotation_with_both_thresholds_is_accepted(two_of_three) -> None:  # type: ignore[no-untyped-def]
    root, keys = two_of_three
    new_keys = [SigningKey.generate() for _ in range(3)]
    check_rotation(root, rotated(keys["root"], new_keys, keys["root"][:2] + new_keys[1:]), NOW)


@pytest.mark.parametrize(
    ("which", "message"),
    [("old-only", "new root keys"), ("new-only", "current root keys"), ("old-one", "current root keys")],
)
def test_rotation_without_both_thresholds_is_rejected(two_of_three, which: str, message: str) -> None:  # type: ignore[no-untyped-def]
    root, keys = two_of_three
    new_keys = [SigningKey.generate() for _ in range(3)]
    signers = {"old-only": keys["root"], "new-only": new_keys, "old-one": keys["root"][:1] + new_keys}[which]
    with pytest.raises(TrustRootRejected) as info:
        check_rotation(root, rotated(keys["root"], new_keys, signers), NOW)
    assert info.value.reason in ("signature-threshold", "unknown-key") and message in info.value.message


@pytest.mark.parametrize("version", [1, 0])
def test_rotation_version_must_go_up(two_of_three, version: int) -> None:  # type: ignore[no-untyped-def]
    root, keys = two_of_three
    if version < 1:
        with pytest.raises(TrustRootRejected):
            make_root_metadata(version=0, expires=LATER, role_keys_={}, thresholds={})
        return
    with pytest.raises(TrustRootRejected) as info:
        check_rotation(root, rotated(keys["root"], keys["root"], keys["root"], version=version), NOW)
    assert info.value.reason == "root-version"


def test_first_install_needs_the_fingerprint_and_rotation_keeps_the_box(tmp_path: Path, two_of_three) -> None:  # type: ignore[no-untyped-def]
    root, keys = two_of_three
    trust = tmp_path / "trust"
    with pytest.raises(InvalidInput):
        install_root(trust, root, NOW)
    with pytest.raises(TrustRootRejected) as info:
        install_root(trust, root, NOW, "0000 1111")
    assert info.value.reason == "root-invalid" and not trust.exists()
    assert install_root(trust, root, NOW, fingerprint(root).lower()) is True
    before = (trust / "root.json").read_bytes()
    with pytest.raises(TrustRootRejected):
        install_root(trust, rotated(keys["root"], keys["root"], keys["root"][:1]), NOW)
    assert (trust / "root.json").read_bytes() == before
    assert install_root(trust, rotated(keys["root"], keys["root"], keys["root"]), NOW) is False
    assert load_root(trust).signed.version == 2


def test_a_root_edited_on_disk_is_an_integrity_error(tmp_path: Path, trust) -> None:  # type: ignore[no-untyped-def]
    box = Box(tmp_path, trust[0])
    path = box.trust / "root.json"
    path.write_bytes(path.read_bytes().replace(b'"version":1', b'"version":7'))
    with pytest.raises(IntegrityError):
        load_root(box.trust)


def test_state_floor_only_moves_forward(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, TrustState(time_floor=NOW, versions={"toolchain/x": "1.2.0"}))
    with pytest.raises(IntegrityError):
        save_state(path, TrustState(time_floor=datetime(2020, 1, 1, tzinfo=UTC), versions={"toolchain/x": "1.2.0"}))
    with pytest.raises(IntegrityError):
        save_state(path, TrustState(time_floor=NOW, versions={"toolchain/x": "1.1.0"}))
    assert load_state(path).time_floor == NOW
    path.write_bytes(b"{not json")
    with pytest.raises(IntegrityError):
        load_state(path)


def test_versions_parse_strictly_and_order_numerically() -> None:
    assert Version.parse("1.10.0") > Version.parse("1.9.9")
    for bad in ("1.2", "v1.2.3", "01.2.3", "1.2.3-rc1", " 1.2.3"):
        with pytest.raises(InvalidInput):
            Version.parse(bad)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_build_is_deterministic(tmp_path: Path, trust, compression: str) -> None:  # type: ignore[no-untyped-def]
    keys = trust[1]["toolchain"]
    a = build(tmp_path / "a", keys, compression=compression) if (tmp_path / "a").mkdir() is None else None
    b = build(tmp_path / "b", keys, compression=compression) if (tmp_path / "b").mkdir() is None else None
    assert a is not None and b is not None and a.read_bytes() == b.read_bytes()
    c = build(tmp_path / "a", keys, compression=compression, name="c", version="1.0.1")
    assert c.read_bytes() != a.read_bytes()


def test_symlinks_modes_and_provides_round_trip(tmp_path: Path, trust) -> None:  # type: ignore[no-untyped-def]
    from sigforge.bundles import EntryPoint, Provides

    src = tmp_path / "src-b.bundle"
    (src / "lib").mkdir(parents=True)
    os.symlink("../bin/cc", src / "lib/cc")
    provides = Provides(targets=("host-c",), entry_points={"cc": EntryPoint(path="bin/cc", version="cc 1.0")})
    bundle = build(tmp_path, trust[1]["toolchain"], provides=provides)
    box = Box(tmp_path / "box", trust[0]) if (tmp_path / "box").mkdir() is None else None
    assert box is not None
    dest = box.install(bundle)
    assert os.readlink(dest / "lib/cc") == "../bin/cc" and (dest / "lib/cc").read_bytes() == FILES["bin/cc"]
    with pytest.raises(InvalidInput, match="not a file of the bundle"):
        bad = Provides(targets=("host-c",), entry_points={"ld": EntryPoint(path="bin/ld", version="1")})
        build(tmp_path, trust[1]["toolchain"], name="bad", provides=bad)


def test_extraction_refuses_an_existing_destination_and_a_swapped_copy(tmp_path: Path, trust) -> None:  # type: ignore[no-untyped-def]
    keys = trust[1]["toolchain"]
    bundle = build(tmp_path, keys)
    verified = verify_bundle(bundle, trust_root=trust[0], state=TrustState(), now=NOW, expected_product="sigforge",
                             host_arch="x86_64", installed_version=None, limits=LIMITS)  # fmt: skip
    area = tmp_path / "area"
    (area / "taken").mkdir(parents=True)
    with pytest.raises(Conflict):
        extract_verified(verified, area / "taken", LIMITS)
    # The local copy is replaced after verification by a bundle whose payload differs: caught while writing.
    raw = gzip.decompress(bundle.read_bytes())
    tampered = raw.replace(b"echo cc 1.0", b"echo pwned!")
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(tampered)
    bundle.write_bytes(out.getvalue())
    with pytest.raises(BundleRejected) as info:
        extract_verified(verified, area / "new", LIMITS)
    assert info.value.reason == "file-hash-mismatch"
    assert sorted(p.name for p in area.iterdir()) == ["taken"]  # no partial tree left behind


@pytest.fixture(scope="module")
def flip_target(tmp_path_factory: pytest.TempPathFactory, trust):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("flip")
    return {c: build(tmp, trust[1]["toolchain"], compression=c, name=c).read_bytes() for c in ("gzip", "zstd")}


def _verify_bytes(tmp: Path, data: bytes, root) -> None:  # type: ignore[no-untyped-def]
    path = tmp / "flipped"
    path.write_bytes(data)
    verify_bundle(path, trust_root=root, state=TrustState(), now=NOW, expected_product="sigforge",
                  host_arch="x86_64", installed_version=None, limits=LIMITS)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_byte_flips_of_the_tar_are_always_rejected(tmp_path: Path, trust, flip_target, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    raw = bytearray(gzip.decompress(flip_target["gzip"]))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(bytes(raw))
    with pytest.raises(BundleRejected):
        _verify_bytes(tmp_path, out.getvalue(), trust[0])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_byte_flips_of_the_archive_never_pass_altered_content(tmp_path: Path, trust, flip_target, data) -> None:  # type: ignore[no-untyped-def]
    compression = data.draw(st.sampled_from(["gzip", "zstd"]))
    archive = bytearray(flip_target[compression])
    i = data.draw(st.integers(0, len(archive) - 1))
    archive[i] ^= data.draw(st.integers(1, 255))
    try:
        _verify_bytes(tmp_path, bytes(archive), trust[0])
    except BundleRejected:
        return
    # Accepted only when the flip hit redundant bits of the compressed encoding: the tar must be byte-identical.
    import zstandard

    def tar(blob: bytes) -> bytes:
        if compression == "gzip":
            return gzip.decompress(blob)
        return zstandard.ZstdDecompressor().decompress(blob)

    assert tar(bytes(archive)) == tar(flip_target[compression])
