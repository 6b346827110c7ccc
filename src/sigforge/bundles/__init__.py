"""The one signed-bundle format (toolchains, updates, install media): manifest, signatures, trust root with
thresholds and rotation, anti-rollback, expiry against a persisted time floor, and safe extraction. Pure
verification: no database, web or worker imports, no processes. See docs/bundles.md.

What a consumer (the toolchain registry, the updater) calls::

    with local_copy(media_path, settings.bundles) as copy:           # never verify the media itself
        root, state = load_trust(settings.trust_path)
        verified = verify_bundle(copy, trust_root=root, state=state, now=datetime.now(UTC),
                                 expected_product=PRODUCT, host_arch=platform.machine(),
                                 installed_version=..., limits=settings.bundles, expected_kind="toolchain")
        extract_verified(verified, dest_dir, settings.bundles)        # atomic; dest_dir must not exist
        record_accepted(settings.trust_path / STATE_FILE, verified.manifest)
    verified.manifest.provides                                       # targets and entry points (toolchains)
"""

from sigforge.bundles.manifest import EntryPoint, FileEntry, Kind, Manifest, Provides, SymlinkEntry
from sigforge.bundles.reasons import Reason
from sigforge.bundles.state import STATE_FILE, TrustState, load_state, record_accepted
from sigforge.bundles.store import ROOT_FILE, install_root, load_root, load_trust
from sigforge.bundles.verify import (
    VerifiedBundle,
    extract_verified,
    local_copy,
    peek_manifest,
    verify_bundle,
    verify_stored_manifest,
)
from sigforge.bundles.version import Version

PRODUCT = "sigforge"

__all__ = [
    "PRODUCT",
    "ROOT_FILE",
    "STATE_FILE",
    "EntryPoint",
    "FileEntry",
    "Kind",
    "Manifest",
    "Provides",
    "Reason",
    "SymlinkEntry",
    "TrustState",
    "VerifiedBundle",
    "Version",
    "extract_verified",
    "install_root",
    "load_root",
    "load_state",
    "load_trust",
    "local_copy",
    "peek_manifest",
    "record_accepted",
    "verify_bundle",
    "verify_stored_manifest",
]
