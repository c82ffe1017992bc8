"""Prompt templates are files loaded by name; a missing variable or template fails loudly."""

import pytest

from labelagent.errors import PromptError
from labelagent.prompts import render, templates_hash


def test_a_missing_variable_is_an_error_naming_the_template():
    with pytest.raises(PromptError, match=r"'item.j2': 'guideline' is undefined"):
        render("item.j2", fields={"text": "hello"})


def test_a_missing_template_is_an_error():
    with pytest.raises(PromptError, match=r"'nope\.j2' not found"):
        render("nope.j2")


def test_the_item_template_names_the_fields_in_order():
    text = render("item.j2", guideline={"fields": ["prompt", "response_a"]})
    assert "`fields` (prompt, response_a)" in text


def test_the_hash_changes_with_the_templates_used():
    assert templates_hash("item.j2") != templates_hash("item.j2", "_guideline.j2")
