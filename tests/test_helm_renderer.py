"""The Go chart renderer (tests/helm_render) behaves like `helm template` where the chart relies
on it: values coalescing, Helm's extra functions, .Files, .Capabilities, document splitting.

A renderer that differs from helm would let a chart pass here and fail at install, so each
Helm behaviour the chart leans on is pinned on a tiny chart of its own."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_render.harness import BuildUnavailable, Renderer, RenderError, build, cache_dir


@pytest.fixture(scope="session")
def binary(request: pytest.FixtureRequest) -> Path:
    try:
        return build(cache_dir(request.config))
    except BuildUnavailable as err:
        pytest.skip(f"chart renderer not buildable: {err}")


def _chart(
    root: Path, templates: dict[str, str], values: str = "", files: dict[str, str] | None = None
) -> Path:
    """A one-off chart `demo` 1.2.3 (appVersion 4.5) under `root`."""
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text(
        "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: '4.5'\n"
    )
    (root / "values.yaml").write_text(textwrap.dedent(values))
    for name, body in templates.items():
        (root / "templates" / name).write_text(textwrap.dedent(body))
    for name, body in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body)
    return root


def _render(
    binary: Path, chart: Path, values: dict[str, Any] | None = None, *extra: str
) -> list[dict[str, Any]]:
    paths = []
    if values is not None:
        path = chart.parent / f"override-{len(list(chart.parent.glob('override-*')))}.yaml"
        path.write_text(yaml.safe_dump(values))
        paths.append(path)
    text = Renderer(binary, chart).run(paths, extra=extra)
    return [d for d in yaml.safe_load_all(text) if d is not None]


def test_values_merge_deeply_and_null_deletes_a_default(binary: Path, tmp_path: Path) -> None:
    chart = _chart(
        tmp_path / "c",
        {
            "cm.yaml": """\
            kind: ConfigMap
            data:
              merged: {{ toJson .Values.a | quote }}
              hasB: {{ hasKey .Values "b" | quote }}
            """
        },
        values="a: {x: 1, deep: {z: 2}}\nb: {keep: me}\n",
    )
    (doc,) = _render(binary, chart, {"a": {"deep": {"w": 3}}, "b": None})
    assert yaml.safe_load(doc["data"]["merged"]) == {"x": 1, "deep": {"z": 2, "w": 3}}
    assert doc["data"]["hasB"] == "false"
    (doc,) = _render(binary, chart, {"a": {}})  # an empty map merges: it clears nothing
    assert yaml.safe_load(doc["data"]["merged"]) == {"x": 1, "deep": {"z": 2}}


def test_numbers_are_floats_as_in_helm(binary: Path, tmp_path: Path) -> None:
    """Helm reads values through JSON: a large integer prints as 1e+06 unless the chart uses int."""
    chart = _chart(
        tmp_path / "c",
        {
            "cm.yaml": "kind: ConfigMap\n"
            "data: {raw: '{{ .Values.big }}', int: '{{ int .Values.big }}'}\n"
        },
        values="big: 1000000\n",
    )
    (doc,) = _render(binary, chart)
    assert doc["data"] == {"raw": "1e+06", "int": "1000000"}


def test_include_tpl_required_and_chart_metadata(binary: Path, tmp_path: Path) -> None:
    chart = _chart(
        tmp_path / "c",
        {
            "_h.tpl": '{{- define "demo.name" -}}{{ .Chart.Name }}-{{ .Chart.Version }}{{- end }}',
            "cm.yaml": """\
                kind: ConfigMap
                metadata: {name: {{ include "demo.name" . }}, namespace: {{ .Release.Namespace }}}
                data:
                  tpl: {{ tpl .Values.greeting . | quote }}
                  app: {{ .Chart.AppVersion | quote }}
                  need: {{ required "need is required" .Values.need | quote }}
                """,
        },
        values="greeting: 'hello {{ .Release.Name }}'\nneed: yes-please\n",
    )
    (doc,) = _render(binary, chart, None, "--name", "rel", "--namespace", "ns")
    assert doc["metadata"] == {"name": "demo-1.2.3", "namespace": "ns"}
    assert doc["data"] == {"tpl": "hello rel", "app": "4.5", "need": "yes-please"}
    with pytest.raises(RenderError, match="need is required"):
        _render(binary, chart, {"need": ""})


def test_files_glob_get_and_as_config(binary: Path, tmp_path: Path) -> None:
    chart = _chart(
        tmp_path / "c",
        {
            "cm.yaml": """\
            kind: ConfigMap
            data:
              {{- (.Files.Glob "files/*.txt").AsConfig | nindent 2 }}
              got: {{ .Files.Get "files/b.txt" | quote }}
              missing: {{ .Files.Get "files/nope" | quote }}
            """
        },
        files={"files/a.txt": "A\n", "files/b.txt": "{{ not a template }}", "files/c.json": "{}"},
    )
    (doc,) = _render(binary, chart)
    assert doc["data"] == {
        "a.txt": "A\n", "b.txt": "{{ not a template }}", "got": "{{ not a template }}",
        "missing": "",
    }  # fmt: skip
    (doc,) = _render(
        binary,
        _chart(
            tmp_path / "d",
            {
                "cm.yaml": "kind: A\nv: '"
                + '{{ .Files.Get "values.yaml" }}{{ .Files.Get "Chart.yaml" }}'
                + "'\n"
            },
            values="a: 1\n",
        ),
    )
    assert doc["v"] == ""  # Helm keeps Chart.yaml and values.yaml out of .Files


def test_capabilities_and_document_splitting(binary: Path, tmp_path: Path) -> None:
    chart = _chart(
        tmp_path / "c",
        {
            "cm.yaml": """\
            # only a comment: dropped
            ---
            kind: A
            has: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}
            minor: {{ .Capabilities.KubeVersion.Minor | quote }}
            ---
            {{- if false }}
            kind: Never
            {{- end }}
            ---
            kind: B
            """
        },
    )
    docs = _render(binary, chart)
    assert [d["kind"] for d in docs] == ["A", "B"]
    assert docs[0]["has"] is False
    assert docs[0]["minor"] == "30"
    docs = _render(binary, chart, None, "--api-versions", "monitoring.coreos.com/v1")
    assert docs[0]["has"] is True


def test_a_template_error_names_the_template_and_line(binary: Path, tmp_path: Path) -> None:
    chart = _chart(tmp_path / "c", {"bad.yaml": "kind: A\nx: {{ .Values.a.b.c }}\n"}, values="{}")
    with pytest.raises(RenderError, match=r"demo/templates/bad.yaml:2"):
        _render(binary, chart)
    chart = _chart(tmp_path / "d", {"bad.yaml": '{{ fail "no, because" }}\n'})
    with pytest.raises(RenderError, match="no, because"):
        _render(binary, chart)


def test_strict_mode_fails_on_a_misspelt_value(binary: Path, tmp_path: Path) -> None:
    chart = _chart(
        tmp_path / "c",
        {"cm.yaml": "kind: A\nx: '{{ .Values.replicaz }}'\n"},
        values="replicas: 2\n",
    )
    (doc,) = [d for d in yaml.safe_load_all(Renderer(binary, chart, strict=False).run()) if d]
    assert doc["x"] == ""  # what helm install would do: render nothing, silently
    with pytest.raises(RenderError, match='no entry for key "replicaz"'):
        Renderer(binary, chart).run()


def test_values_are_yaml_1_1_as_in_helm(binary: Path, tmp_path: Path) -> None:
    """Helm reads values with go-yaml v2: an unquoted `off` is the boolean false (and so is a key
    `n`), which is why the chart's schema types gpu/npu as strings and the examples quote "off"."""
    template = "kind: A\ngpu: '{{ .Values.gpu }}'\nl: {{ toYaml .Values.l | nindent 2 }}\n"
    template += "keys: {{ keys .Values | sortAlpha | toJson | quote }}\n"
    chart = _chart(tmp_path / "c", {"cm.yaml": template}, values='gpu: off\nl: ["on", b]\nn: 1\n')
    (doc,) = _render(binary, chart)
    assert doc["gpu"] == "false"
    assert doc["l"] == ["on", "b"]  # a string that YAML 1.1 reads as a bool is quoted back
    assert yaml.safe_load(doc["keys"]) == ["false", "gpu", "l"]
