import pytest

from speechmodels.weights import WeightsNotFound, find_file, resolve_weights


def test_package_reference_is_located_without_import():
    path = resolve_weights("package:silero_vad/data/silero_vad.onnx")
    assert path.is_file() and path.name == "silero_vad.onnx"
    assert resolve_weights("package:resemblyzer").joinpath("pretrained.pt").is_file()


def test_local_path(tmp_path):
    assert resolve_weights(str(tmp_path)) == tmp_path


def test_missing_package_and_subpath():
    with pytest.raises(WeightsNotFound, match="not installed"):
        resolve_weights("package:no_such_package_here")
    with pytest.raises(WeightsNotFound, match="has no"):
        resolve_weights("package:silero_vad/absent.onnx")


def test_repo_id_goes_through_the_hub_cache_and_offline_mode_is_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import importlib

    import huggingface_hub.constants

    importlib.reload(huggingface_hub.constants)
    try:
        with pytest.raises(WeightsNotFound, match="harmony-ai/harmony-speech-v1"):
            resolve_weights("harmony-ai/harmony-speech-v1")
    finally:
        monkeypatch.undo()
        importlib.reload(huggingface_hub.constants)


def test_not_a_path_nor_repo():
    with pytest.raises(WeightsNotFound):
        resolve_weights("definitely not/a/model")


def test_find_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "model.onnx").write_bytes(b"x")
    assert find_file(tmp_path, "model.onnx", pattern="*.onnx") == tmp_path / "sub" / "model.onnx"
    with pytest.raises(WeightsNotFound):
        find_file(tmp_path, "other.onnx")
