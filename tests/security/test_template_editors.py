"""Row "template editors": SSTI payloads, huge loops and typo'd variables in a template edited in the UI.

A save is refused with a clear reason and the published version stays; a template that hides a bomb
behind a condition the validation render does not take is still bounded in time and size when a real
draft renders it.
"""

from __future__ import annotations

import time

import pytest

from assistant.errors import TemplateError
from assistant.prompts import MAX_OUTPUT_CHARS, RENDER_TIME_LIMIT_S, render_source, sample_variables
from assistant.templates import TemplateStore
from assistant.wiring import build_drafter

#: payload -> a word the refusal must contain, so the editor knows what is wrong.
PAYLOADS = {
    "{{ ''.__class__.__mro__[1].__subclasses__() }}": "__class__",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}": "__init__",
    "{{ lipsum.__globals__['os'].system('id') }}": "__globals__",
    "{{ joiner.__init__.__globals__ }}": "__init__",
    "{{ namespace.__init__.__globals__ }}": "__init__",
    "{{ self._TemplateReference__context }}": "_TemplateReference__context",
    "{{ ''|attr('__class__') }}": "attr",
    "{{ config.items() }}": "config",
    "{{ request.application }}": "request",
    "{% include '/etc/passwd' %}": "include",
    "{% import 'system.j2' as s %}": "import",
    "{% extends 'system.j2' %}": "extends",
    "{% for i in range(10**9) %}x{% endfor %}": "range",
    "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}": "loop",
    "{{ 'x' * 10**9 }}": "",
    "{{ (9 ** 99) ** 99 }}": "too large",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}": "",
    "{{ custmer_message|fence }}": "unknown variable 'custmer_message'",
    "{{ knowlege|length }}": "unknown variable 'knowlege'",
}


@pytest.fixture
def store(settings):
    return TemplateStore(settings)


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_a_dangerous_or_broken_save_is_refused_with_a_clear_reason(store, payload):
    published = store.get("reply")
    source = published.source + "\n" + payload + "\n"
    start = time.monotonic()
    with pytest.raises(TemplateError) as err:
        store.save("reply", source, base_version=published.version, author="mallory")
    assert time.monotonic() - start < 4 * RENDER_TIME_LIMIT_S + 2
    message = str(err.value)
    assert message.startswith("template 'reply' was not saved: ")
    assert err.value.problems and all("reply" in p for p in err.value.problems)
    if PAYLOADS[payload]:
        assert PAYLOADS[payload] in message, message
    assert "published version is unchanged" in err.value.hint
    assert store.latest_version("reply") == published.version
    assert store.get("reply").source == published.source


@pytest.mark.parametrize("name", ["system", "fewshot"])
def test_the_system_and_fewshot_templates_are_guarded_too(store, name):
    current = store.get(name)
    with pytest.raises(TemplateError, match="not saved"):
        store.save(name, current.source + "{{ cycler.__init__.__globals__ }}", base_version=current.version,
                   author="mallory")


HIDDEN_BOMBS = [
    "{% if 'TRIGGER' in customer_message %}{% for i in range(10**9) %}x{% endfor %}{% endif %}",
    "{% if 'TRIGGER' in customer_message %}{% for i in range(999) %}{% for j in range(999) %}{{ customer_message }}"
    "{% endfor %}{% endfor %}{% endif %}",
    "{% if 'TRIGGER' in customer_message %}{{ customer_message * 100000 }}{% endif %}",
]


@pytest.mark.parametrize("bomb", HIDDEN_BOMBS)
def test_a_bomb_the_validation_render_misses_is_bounded_at_draft_time(kb_copy, bomb):
    """Validation cannot take every branch; every real render runs under the same time and size limits."""
    templates = TemplateStore(kb_copy)
    reply = templates.get("reply")
    saved = templates.save("reply", reply.source + "\n" + bomb + "\n", base_version=reply.version, author="mallory")
    templates.publish("reply", saved.version, by="mallory")
    drafter = build_drafter(kb_copy, backend_name="composer", templates=templates)
    assert drafter.draft("My jacket arrived torn").text  # ordinary messages still draft
    start = time.monotonic()
    with pytest.raises(TemplateError, match="template 'reply'"):
        drafter.draft("My jacket arrived torn. TRIGGER")
    assert time.monotonic() - start < RENDER_TIME_LIMIT_S + 3


def test_every_render_is_capped_in_size():
    variables = sample_variables() | {"customer_message": "y" * 50_000}
    with pytest.raises(TemplateError, match=f"output exceeds {MAX_OUTPUT_CHARS}"):
        render_source("{{ customer_message }}{{ customer_message }}{{ customer_message }}", variables, name="big")
