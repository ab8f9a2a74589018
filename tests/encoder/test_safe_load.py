"""Loading a pipeline from a stranger (issue 14): no file written, no code run, no huge
allocation; every crafted pipeline is refused with a message naming what is wrong.

Each crafted pipeline is a saved benign pipeline whose `transformer/model` file was edited
the way an attacker would. A Python audit hook records every file opened for writing and
every directory created while loading: the loads must record none (not even inside a
temporary directory), and the attack's target paths must not exist afterwards.
"""

import json
import os
import resource
import shutil
import struct
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy
import pytest
import spacy
import srsly

from spacy_modernbert.encoder.checkpoint import CheckpointError

_RECORDING = [False]
_WRITES: list = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_WRITE_EVENTS = (
    "os.mkdir",
    "os.rename",
    "os.symlink",
    "os.link",
    "os.truncate",
    "shutil.copyfile",
    "shutil.move",
)


def _audit(event, args):
    if not _RECORDING[0]:
        return
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        if str(path).endswith(".pyc") or "__pycache__" in str(path):
            return
        writing = isinstance(mode, str) and any(c in mode for c in "wax+")
        writing = writing or (isinstance(flags, int) and bool(flags & _WRITE_FLAGS))
        if writing:
            _WRITES.append((event, str(path)))
    elif event in _WRITE_EVENTS:
        _WRITES.append((event, str(args[0]) if args else ""))


sys.addaudithook(_audit)


@contextmanager
def no_file_writes():
    """Fail if anything is opened for writing or any directory created inside the block."""
    _WRITES.clear()
    _RECORDING[0] = True
    try:
        yield
    finally:
        _RECORDING[0] = False
    assert not _WRITES, f"loading wrote to the filesystem: {_WRITES[:5]}"


TEXTS = ["Maria Lopez restarted payments-api.", "Disk usage on db-7 reached 91 percent."]


@pytest.fixture(scope="module")
def saved_pipeline(tiny_checkpoint, transformer_config, listener_ner_config, tmp_path_factory):
    from spacy.training import Example

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config=transformer_config(tiny_checkpoint, max_length=64, max_batch_tokens=512),
    )
    nlp.add_pipe("ner", config=listener_ner_config)
    examples = [Example.from_dict(nlp.make_doc(TEXTS[0]), {"entities": [(0, 11, "PERSON")]})]
    nlp.initialize(lambda: examples)
    path = tmp_path_factory.mktemp("benign") / "pipeline"
    nlp.to_disk(path)
    spacy.load(path)  # warm up the lazy imports outside the recorded blocks
    return path


def _shim_message(pipeline: Path) -> dict:
    outer = srsly.msgpack_loads((pipeline / "transformer" / "model").read_bytes())
    return srsly.msgpack_loads(outer["shims"][0][0])


def craft(saved: Path, out: Path, edit) -> Path:
    """Copy the benign pipeline and apply `edit(shim_message)` to its transformer file."""
    shutil.copytree(saved, out)
    model_file = out / "transformer" / "model"
    outer = srsly.msgpack_loads(model_file.read_bytes())
    shim = srsly.msgpack_loads(outer["shims"][0][0])
    edit(shim)
    outer["shims"][0][0] = srsly.msgpack_dumps(shim)
    model_file.write_bytes(srsly.msgpack_dumps(outer))
    return out


def load_refused(path: Path, match: str) -> None:
    with no_file_writes():
        with pytest.raises(CheckpointError, match=match):
            spacy.load(path)


def test_benign_pipeline_loads_without_writing(saved_pipeline):
    with no_file_writes():
        nlp = spacy.load(saved_pipeline)
    doc = nlp(TEXTS[0])
    assert doc._.trf_data.model_output.last_hidden_state.shape[1] == len(
        doc._.trf_data.wordpieces.strings[0]
    )


def test_audit_hook_sees_writes(tmp_path):
    """The recorder itself can fail (a test that cannot fail is a defect)."""
    with pytest.raises(AssertionError, match="wrote to the filesystem"):
        with no_file_writes():
            (tmp_path / "x").write_text("x")


@pytest.mark.parametrize(
    "kind",
    ["absolute", "dotdot", "nul", "subdir", "backslash", "unknown", "pth"],
)
def test_tokenizer_entry_names_are_refused(saved_pipeline, tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    tag = uuid.uuid4().hex
    targets = {
        "absolute": str(outside / f"pwned-{tag}.txt"),
        "dotdot": f"../pwned-{tag}.txt",
        "nul": f"tokenizer.json\x00{tag}",
        "subdir": f"sub/pwned-{tag}.json",
        "backslash": f"..\\pwned-{tag}.txt",
        "unknown": f"pwned-{tag}.txt",
        "pth": f"../../lib/python3/site-packages/pwned-{tag}.pth",
    }
    name = targets[kind]

    def edit(shim):
        shim["tokenizer"][name] = b"import os; print('owned')\n"

    # one entry fewer, so that the count limit is not what refuses it
    def edit_replace(shim):
        del shim["tokenizer"]["special_tokens_map.json"]
        edit(shim)

    path = craft(saved_pipeline, tmp_path / "crafted", edit_replace)
    load_refused(
        path,
        "path, not a file name|unexpected tokenizer entry"
        if kind != "nul"
        else "path, not a file name",
    )
    assert not (outside / f"pwned-{tag}.txt").exists()
    assert not (Path(tempfile.gettempdir()) / f"pwned-{tag}.txt").exists()
    assert not list(tmp_path.rglob(f"*pwned-{tag}*"))
    assert not list(Path.cwd().glob(f"*pwned-{tag}*"))


def test_thousands_of_tokenizer_entries_are_refused(saved_pipeline, tmp_path):
    def edit(shim):
        for i in range(5000):
            shim["tokenizer"][f"f{i}.json"] = b"{}"

    load_refused(
        craft(saved_pipeline, tmp_path / "crafted", edit), "5003 tokenizer entries; at most 3"
    )


def test_tokenizer_asking_for_remote_code_is_refused(saved_pipeline, tmp_path):
    def edit(shim):
        config = json.loads(shim["tokenizer"]["tokenizer_config.json"])
        config["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
        config["tokenizer_class"] = "EvilTokenizer"
        shim["tokenizer"]["tokenizer_config.json"] = json.dumps(config).encode()

    load_refused(craft(saved_pipeline, tmp_path / "crafted", edit), "sets 'auto_map'.*run code")


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("tokenizer_file", "/etc/passwd", "sets 'tokenizer_file'"),
        ("gguf_file", "/etc/passwd", "sets 'gguf_file'"),
        ("tokenizer_class", "BertTokenizerFast", "tokenizer_class 'BertTokenizerFast'"),
    ],
)
def test_tokenizer_config_naming_files_or_classes_is_refused(
    saved_pipeline, tmp_path, key, value, match
):
    def edit(shim):
        config = json.loads(shim["tokenizer"]["tokenizer_config.json"])
        config[key] = value
        shim["tokenizer"]["tokenizer_config.json"] = json.dumps(config).encode()

    load_refused(craft(saved_pipeline, tmp_path / "crafted", edit), match)


def test_huge_declared_model_is_refused_before_allocation(saved_pipeline, tmp_path):
    """A config declaring ~40 GB of weights per layer is refused without allocating them."""

    def edit(shim):
        shim["config"]["hidden_size"] = 1 << 15
        shim["config"]["intermediate_size"] = 1 << 17

    path = craft(saved_pipeline, tmp_path / "crafted", edit)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load_refused(path, r"has shape \[.*\] but the stored config implies \[.*32768")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 500


def test_absurd_config_sizes_are_refused(saved_pipeline, tmp_path):
    def edit(shim):
        shim["config"]["num_hidden_layers"] = 10**9

    load_refused(
        craft(saved_pipeline, tmp_path / "crafted", edit),
        "'num_hidden_layers' = 1000000000 is not an integer in",
    )


def _rewrite_header(state: bytes, change) -> bytes:
    n = struct.unpack("<Q", state[:8])[0]
    header = json.loads(state[8 : 8 + n])
    change(header)
    new = json.dumps(header).encode()
    return struct.pack("<Q", len(new)) + new + state[8 + n :]


def test_huge_declared_tensor_shape_in_safetensors_is_refused(saved_pipeline, tmp_path):
    def change(header):
        name = next(k for k in header if k != "__metadata__")
        header[name]["shape"] = [1 << 20, 1 << 20]

    def edit(shim):
        shim["state"] = _rewrite_header(shim["state"], change)

    load_refused(
        craft(saved_pipeline, tmp_path / "crafted", edit), r"declares shape \[1048576, 1048576\]"
    )


def test_safetensors_itself_checks_the_header_against_the_buffer(saved_pipeline):
    """Upstream behaviour we rely on as a second line: safetensors refuses a header whose
    declared sizes do not match the buffer, without allocating the declared size."""
    from safetensors.torch import load

    state = _shim_message(saved_pipeline)["state"]

    def change(header):
        name = next(k for k in header if k != "__metadata__")
        header[name]["shape"] = [1 << 20, 1 << 20]

    with pytest.raises(Exception, match="(?i)metadata|invalid|mismatch|incomplete"):
        load(_rewrite_header(state, change))


def test_truncated_weights_are_refused(saved_pipeline, tmp_path):
    def edit(shim):
        shim["state"] = shim["state"][: len(shim["state"]) // 2]

    load_refused(craft(saved_pipeline, tmp_path / "crafted", edit), "truncated or corrupt")


def test_non_finite_weights_are_refused(saved_pipeline, tmp_path):
    from safetensors.torch import load, save

    def edit(shim):
        state = load(shim["state"])
        state["layers.0.attn.Wqkv.weight"][0, 0] = float("nan")
        shim["state"] = save(state)

    load_refused(
        craft(saved_pipeline, tmp_path / "crafted", edit),
        "'layers.0.attn.Wqkv.weight' contains NaN",
    )


def test_smaller_tokenizer_swapped_in_is_refused(saved_pipeline, tmp_path):
    from spacy_modernbert.tiny import train_tokenizer

    small = train_tokenizer(["a tiny corpus of words for a small tokenizer"], vocab_size=300)

    def edit(shim):
        shim["tokenizer"]["tokenizer.json"] = small.backend_tokenizer.to_str().encode()

    load_refused(
        craft(saved_pipeline, tmp_path / "crafted", edit),
        "tokenizer and weights do not belong together",
    )


def test_in_memory_tokenizer_equals_from_pretrained(saved_pipeline, tmp_path):
    """The tokenizer built from memory behaves exactly as `from_pretrained` on the same files,
    also with ModernBERT-base's settings (an lstrip [MASK], clean-up spaces, 1e30 length)."""
    from transformers import AutoTokenizer

    from spacy_modernbert.encoder.safe_load import tokenizer_from_entries

    entries = dict(_shim_message(saved_pipeline)["tokenizer"])
    config = json.loads(entries["tokenizer_config.json"])
    variant = dict(
        config,
        clean_up_tokenization_spaces=True,
        model_max_length=1e30,
        model_input_names=["input_ids", "attention_mask"],
    )
    variant["added_tokens_decoder"] = dict(config["added_tokens_decoder"])
    variant["added_tokens_decoder"]["4"] = dict(config["added_tokens_decoder"]["4"], lstrip=True)
    texts = ["Hello [MASK] world", " [CLS]x[SEP] ", "naïve café 東京 ", "a  b\tc\n"]
    for cfg in (config, variant):
        files = dict(entries, **{"tokenizer_config.json": json.dumps(cfg).encode()})
        ref_dir = tmp_path / uuid.uuid4().hex
        ref_dir.mkdir()
        for name, data in files.items():
            (ref_dir / name).write_bytes(data)
        reference = AutoTokenizer.from_pretrained(str(ref_dir), use_fast=True)
        ours = tokenizer_from_entries(files)
        assert type(ours) is type(reference)
        assert ours.backend_tokenizer.to_str() == reference.backend_tokenizer.to_str()
        assert ours.special_tokens_map == reference.special_tokens_map
        assert {k: repr(v) for k, v in ours.added_tokens_decoder.items()} == {
            k: repr(v) for k, v in reference.added_tokens_decoder.items()
        }
        assert ours.model_max_length == reference.model_max_length
        assert ours.clean_up_tokenization_spaces == reference.clean_up_tokenization_spaces
        assert ours.model_input_names == reference.model_input_names
        assert len(ours) == len(reference)
        for text in texts:
            assert ours(text)["input_ids"] == reference(text)["input_ids"]
            assert ours.decode(ours(text)["input_ids"]) == reference.decode(
                reference(text)["input_ids"]
            )
        out_a, out_b = tmp_path / uuid.uuid4().hex, tmp_path / uuid.uuid4().hex
        ours.save_pretrained(out_a)
        reference.save_pretrained(out_b)
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            assert (out_a / name).read_bytes() == (out_b / name).read_bytes(), name


def test_round_trip_keeps_outputs(saved_pipeline, tmp_path):
    nlp = spacy.load(saved_pipeline)
    expected = [d._.trf_data.model_output.last_hidden_state for d in nlp.pipe(TEXTS)]
    nlp.to_disk(tmp_path / "again")
    with no_file_writes():
        again = spacy.load(tmp_path / "again")
    for doc, hidden in zip(again.pipe(TEXTS), expected):
        numpy.testing.assert_array_equal(doc._.trf_data.model_output.last_hidden_state, hidden)


def test_checkpoint_with_non_finite_weights_is_refused(tiny_checkpoint, tmp_path):
    from safetensors.torch import load_file, save_file

    from spacy_modernbert.encoder.checkpoint import load_checkpoint

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    state = load_file(ckpt / "model.safetensors")
    name = next(k for k in state if k.endswith("Wo.weight"))
    state[name][0, 0] = float("inf")
    save_file(state, ckpt / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(
        CheckpointError, match=f"checkpoint '{ckpt}': weight '{name}' contains NaN or infinite"
    ):
        load_checkpoint(ckpt)


def test_checkpoint_tokenizer_asking_for_remote_code_is_refused(tiny_checkpoint, tmp_path):
    """`init` from a checkpoint directory never sets trust_remote_code."""
    from spacy_modernbert.encoder.checkpoint import load_checkpoint

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    marker = tmp_path / f"ran-{uuid.uuid4().hex}"
    (ckpt / "evil_tokenizer.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import PreTrainedTokenizerFast\n"
        "class EvilTokenizer(PreTrainedTokenizerFast):\n    pass\n"
    )
    config = json.loads((ckpt / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": [None, "evil_tokenizer.EvilTokenizer"]}
    config["tokenizer_class"] = "EvilTokenizer"
    (ckpt / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="never runs checkpoint code"):
        load_checkpoint(ckpt)
    assert not marker.exists()


def test_package_never_unpickles_or_trusts_remote_code():
    """Source audit: no pickle, no unsafe torch.load, no eval/exec, no trust_remote_code=True."""
    import re

    import spacy_modernbert

    root = Path(spacy_modernbert.__file__).parent
    patterns = {
        "pickle": re.compile(r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b", re.M),
        "torch.load": re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)"),
        "eval/exec": re.compile(r"(?<![.\w])(eval|exec)\("),
        "trust_remote_code": re.compile(r"trust_remote_code\s*=\s*True"),
        "allow_pickle": re.compile(r"allow_pickle\s*=\s*True"),
    }
    found = [
        f"{path.relative_to(root)}: {what}"
        for path in root.rglob("*.py")
        for what, pattern in patterns.items()
        if pattern.search(path.read_text(encoding="utf8"))
    ]
    assert not found, found
    assert patterns["torch.load"].search("x = torch.load(f)")  # the audit can fail


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("norm_eps", float("nan"), "'norm_eps' is nan, not a finite number"),
        ("pad_token_id", 10**6, "pad_token_id 3 but the model was trained with 1000000"),
        ("hidden_activation", "no_such_activation", "cannot build a ModernBERT model"),
        ("hidden_size", "64", "'hidden_size' = '64' is not an integer"),
    ],
)
def test_config_fields_that_lie_are_refused(saved_pipeline, tmp_path, field, value, match):
    def edit(shim):
        shim["config"][field] = value

    load_refused(craft(saved_pipeline, tmp_path / "crafted", edit), match)


def test_checkpoint_config_declaring_a_huge_model_is_refused_before_allocation(
    tiny_checkpoint, tmp_path
):
    from spacy_modernbert.encoder.checkpoint import load_checkpoint

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config.update(hidden_size=1 << 15, intermediate_size=1 << 17)
    (ckpt / "config.json").write_text(json.dumps(config))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(
        CheckpointError, match="its config declares .* parameters .* but its weight files hold"
    ):
        load_checkpoint(ckpt)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 500
