"""Bundles and hot swap: verified loading, refusals keep the old model, smoke-test and probation rollback."""

from __future__ import annotations

import numpy as np
import pytest

from edge_node.inference import load_runner, resolve_providers, session_options
from edge_node.models import ModelSlot, install_update
from mmer_core.bundle import BundleError, load_public_key
from mmer_core.modalities import SPECS
from testkit.edge_models import bundle_blobs, make_bundle, manifest_for


@pytest.fixture
def setup(tmp_path):
    keys = tmp_path / "keys"
    models = tmp_path / "models"
    make_bundle(models / "eeg", keys, "eeg", 1)
    pub = load_public_key(keys / "trainer.pub")
    return models, keys, pub, ModelSlot("eeg", load_runner(models / "eeg", pub))


def x_eeg(n=1):
    return np.random.default_rng(3).normal(0, 1, (n, *SPECS["eeg"].input_shape)).astype(np.float32)


@pytest.mark.parametrize("modality", list(SPECS))
def test_each_modality_bundle_loads_and_scores(tmp_path, modality):
    b = make_bundle(tmp_path / modality, tmp_path / "k", modality, 1)
    r = load_runner(b.path, load_public_key(tmp_path / "k" / "trainer.pub"), ["NoSuchNPUExecutionProvider"])
    x = np.zeros((1, *SPECS[modality].input_shape), np.float32)
    probs = r.run(x)
    assert probs.shape == (1, 4) and abs(probs.sum() - 1) < 1e-5
    assert r.session.get_providers() == ["CPUExecutionProvider"]
    r.smoke_test()


def test_provider_fallback_warns(caplog):
    assert resolve_providers(["QNNExecutionProvider"]) == ["CPUExecutionProvider"]
    assert "not available" in caplog.text
    opts = session_options(1, 1)
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1


def test_tampered_bundle_on_disk_is_refused(setup):
    models, _keys, pub, _ = setup
    (models / "eeg" / "model.onnx").write_bytes(b"\0" * 10)
    with pytest.raises(BundleError, match="sha256"):
        load_runner(models / "eeg", pub)


def test_tampered_unsigned_or_downgraded_updates_keep_old_model(setup, tmp_path):
    models, keys, pub, slot = setup
    good = make_bundle(tmp_path / "v2", keys, "eeg", 2, seed=5)
    blobs = bundle_blobs(good)
    tampered = dict(blobs, **{"model.onnx": blobs["model.onnx"][:-1] + b"x"})
    with pytest.raises(BundleError, match="sha256"):
        install_update(slot, good.manifest, tampered, pub, models)
    unsigned = manifest_for("eeg", 2)
    unsigned.files.extend(good.manifest.files)
    with pytest.raises(BundleError, match="unsigned"):
        install_update(slot, unsigned, blobs, pub, models)
    forged = type(good.manifest)()
    forged.CopyFrom(good.manifest)
    forged.version = 9
    with pytest.raises(BundleError, match="signature"):
        install_update(slot, forged, blobs, pub, models)
    probs, serving = slot.score(x_eeg())
    assert slot.version == 1 and serving.version == 1 and np.all(np.isfinite(probs)), (
        "the old model keeps serving"
    )
    install_update(slot, good.manifest, blobs, pub, models)
    old = make_bundle(tmp_path / "v1b", keys, "eeg", 1, seed=7)
    with pytest.raises(BundleError, match="downgrade"):
        install_update(slot, old.manifest, bundle_blobs(old), pub, models)
    assert slot.version == 2 and slot.score(x_eeg())[1].version == 2
    install_update(slot, old.manifest, bundle_blobs(old), pub, models, rollback=True)
    assert slot.version == 1


def test_good_bundle_swaps_between_windows_and_is_persisted(setup, tmp_path):
    models, keys, pub, slot = setup
    versions = [slot.score(x_eeg())[1].version for _ in range(3)]
    good = make_bundle(tmp_path / "v2", keys, "eeg", 2, seed=5)
    install_update(slot, good.manifest, bundle_blobs(good), pub, models)
    versions += [slot.score(x_eeg())[1].version for _ in range(3)]
    assert versions == [1, 1, 1, 2, 2, 2]
    assert load_runner(models / "eeg", pub).version == 2


def test_smoke_test_failure_keeps_old_model(setup, tmp_path):
    models, keys, pub, slot = setup
    bad = make_bundle(tmp_path / "v2", keys, "eeg", 2, seed=5, wrong_samples=True)
    with pytest.raises(BundleError, match="smoke test"):
        install_update(slot, bad.manifest, bundle_blobs(bad), pub, models)
    assert slot.version == 1 and load_runner(models / "eeg", pub).version == 1


def test_failing_first_inferences_roll_back_and_rescore(setup, tmp_path):
    _models, keys, pub, slot = setup
    nan = make_bundle(tmp_path / "v2", keys, "eeg", 2, nan=True)
    runner = load_runner(nan.path, pub)
    slot.current, slot.previous, slot._probation = runner, slot.current, 3  # as if its smoke test had passed
    probs, used = slot.score(x_eeg())
    assert used.version == 1 and np.all(np.isfinite(probs)) and slot.rollbacks == 1
    assert slot.version == 1
