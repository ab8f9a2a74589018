"""`distill`: the run end to end, the student's initialization, resume, and refusals."""

import json

import numpy
import pytest
import spacy

from spacy_modernbert.distill import DistillSettingsError
from spacy_modernbert.distill.loop import distill


def test_student_is_an_ordinary_pipeline(run, teacher):
    output, summary = run
    nlp = spacy.load(output / "model-last")
    assert nlp.pipe_names == ["transformer", "ner", "anomaly_scorer"]
    trf = nlp.get_pipe("transformer")
    assert sorted(trf.listening_components) == ["anomaly_scorer", "ner"]
    assert set(nlp.get_pipe("ner").labels) == {"PERSON", "SERVICE"}
    doc = nlp("Maria Lopez restarted payments-api after the deploy.")
    assert 0.0 <= doc._.anomaly_score <= 1.0
    recorded = nlp.meta["distillation"]
    assert recorded["teacher_path"] == str(teacher)
    assert recorded["signals"] == ["hidden", "ner", "anomaly"]
    assert recorded["teacher_encoder"] == {"layers": 4, "hidden_size": 64}
    assert recorded["student_encoder"] == {"layers": 2, "hidden_size": 64}
    assert recorded["init_from_teacher_layers"] == [0, 3]
    assert summary["steps"] == 6 and summary["docs_per_s"] > 0
    assert (output / "teacher.spacy").is_file()


def test_silver_docs_carry_the_teachers_signals(run, teacher):
    from spacy.tokens import DocBin

    from spacy_modernbert.anomaly.loss import SOFT_TARGETS
    from spacy_modernbert.distill.hidden import read_vectors

    output, _ = run
    nlp = spacy.load(teacher)
    docs = list(DocBin().from_disk(output / "teacher.spacy").get_docs(nlp.vocab))
    assert len(docs) == 40
    said = nlp(docs[0].text)
    assert [(e.text, e.label_) for e in docs[0].ents] == [(e.text, e.label_) for e in said.ents]
    assert docs[0].user_data[SOFT_TARGETS]["ANOMALY"] == pytest.approx(
        said._.anomaly_score, abs=1e-4
    )
    vectors = read_vectors(docs[0])
    assert vectors.shape == (len(docs[0]), 64)
    assert numpy.abs(vectors).sum() > 0


def test_layer_subset_init_copies_the_teachers_layers(teacher, student_config):
    from spacy_modernbert.distill.student import encoder_of, init_from_teacher, load_student

    t_nlp = spacy.load(teacher)
    nlp, _ = load_student(student_config("deep"))
    nlp.initialize()
    student = {
        k: v.clone() for k, v in encoder_of(nlp).transformer.encoder.to_hf_state_dict().items()
    }
    assert init_from_teacher(nlp, t_nlp, "teacher-layers") == {"teacher_layers": [0, 3]}
    after = encoder_of(nlp).transformer.encoder.to_hf_state_dict()
    before_teacher = encoder_of(t_nlp).transformer.encoder.to_hf_state_dict()
    key = "layers.1.mlp.Wo.weight"
    assert not numpy.allclose(student[key].numpy(), after[key].numpy())
    assert numpy.allclose(after[key].numpy(), before_teacher["layers.3.mlp.Wo.weight"].numpy())
    assert numpy.allclose(
        after["embeddings.tok_embeddings.weight"].numpy(),
        before_teacher["embeddings.tok_embeddings.weight"].numpy(),
    )


def test_narrow_student_learns_through_a_projection(teacher, student_config, texts, tmp_path):
    output = tmp_path / "narrow"
    with pytest.raises(DistillSettingsError, match="differ in shape"):
        distill(teacher, student_config("narrow"), [texts], output, steps=2, init="teacher-layers")
    summary = distill(
        teacher,
        student_config("narrow"),
        [texts],
        tmp_path / "narrow2",
        steps=2,
        signals=["hidden", "ner", "anomaly"],
        hidden_loss="cosine",
    )
    assert summary["init_from_teacher_layers"] is None
    nlp = spacy.load(tmp_path / "narrow2" / "model-last")
    assert nlp.meta["distillation"]["student_encoder"] == {"layers": 1, "hidden_size": 32}
    assert nlp.meta["distillation"]["hidden_loss"] == "cosine"


def test_resume_continues_from_the_last_save_without_the_teacher(
    run, teacher, student_config, texts, monkeypatch, capsys
):
    import spacy_modernbert.distill.loop as loop

    output, _ = run
    state = output / "state" / loop.STATE_FILE
    saved = json.loads(state.read_text())
    assert saved["step"] == 6
    saved["step"] = 3  # as if the run had stopped after its first save
    state.write_text(json.dumps(saved))

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher ran again: its outputs were cached")

    monkeypatch.setattr(loop, "teach", no_teacher)
    summary = distill(
        teacher,
        student_config("deep"),
        [texts],
        output,
        steps=6,
        eval_every=3,
        log_every=3,
        resume=True,
    )
    assert summary["steps"] == 6
    assert "Resuming from step 3" in capsys.readouterr().out
    with pytest.raises(DistillSettingsError, match="other settings"):
        distill(teacher, student_config("deep"), [texts], output, steps=7, resume=True)


def test_refusals(teacher, student_config, texts, tmp_path):
    with pytest.raises(DistillSettingsError, match="Unknown signal"):
        distill(teacher, student_config("deep"), [texts], tmp_path / "a", signals=["logits"])
    with pytest.raises(DistillSettingsError, match="would learn nothing"):
        distill(teacher, student_config("deep"), [texts], tmp_path / "b", signals=["hidden", "ner"])
    with pytest.raises(DistillSettingsError, match="no distillation run"):
        distill(teacher, student_config("deep"), [texts], tmp_path / "c", resume=True)
