"""Fork safety: n_process children print no tokenizers warning; bf16 on CPU warns once."""

import subprocess
import sys
import textwrap
import warnings

import spacy

from spacy_modernbert.encoder.fork_safety import make_torch_fork_safe

FORKED = "huggingface/tokenizers: The current process just got forked"


def test_no_tokenizers_fork_warning_per_process(tiny_checkpoint):
    script = textwrap.dedent(
        f"""
        import os, spacy
        nlp = spacy.blank("en")
        nlp.add_pipe("transformer", config={{"model": {{
            "@architectures": "spacy-modernbert.ModernBertTransformer.v1", "name": {str(tiny_checkpoint)!r}}}}})
        nlp.initialize()
        texts = [f"Text number {{i}} with a few words." for i in range(24)]
        list(nlp.pipe(texts, batch_size=8))  # the parent's tokenizer runs in parallel first
        docs = list(nlp.pipe(texts, batch_size=4, n_process=2))
        assert len(docs) == 24 and all(d._.trf_data is not None for d in docs)
        assert "TOKENIZERS_PARALLELISM" not in os.environ  # the parent keeps its setting
        print("ok")
        """
    )
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": ":".join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
    assert FORKED not in result.stderr


def test_user_setting_of_tokenizers_parallelism_is_kept(monkeypatch):
    import os

    from spacy_modernbert.encoder import fork_safety as threads

    make_torch_fork_safe()
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    threads._tokenizers_off_for_fork()
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true"
    threads._restore_tokenizers_in_parent()
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true"
    monkeypatch.delenv("TOKENIZERS_PARALLELISM")
    threads._tokenizers_off_for_fork()
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"  # what the child inherits
    threads._restore_tokenizers_in_parent()
    assert "TOKENIZERS_PARALLELISM" not in os.environ


def test_mixed_precision_on_cpu_warns_once(tiny_checkpoint, transformer_config):
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(tiny_checkpoint, mixed_precision=True))
    nlp.initialize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nlp("One text.")
        list(nlp.pipe(["Another text.", "And a third one."], batch_size=1))
    messages = [str(w.message) for w in caught if "mixed_precision" in str(w.message)]
    assert len(messages) == 1 and "float32" in messages[0]
