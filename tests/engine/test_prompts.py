import pytest

from app.engine import prompts


def test_phind_v2_matches_model_card():
    p = prompts.build("phind-v2", "Write a function that adds two numbers.")
    assert p.text == ("### System Prompt\nYou are an intelligent programming assistant.\n\n"
                      "### User Message\nWrite a function that adds two numbers.\n\n### Assistant\n")
    assert "### User Message" in p.stop


def test_phind_v2_custom_system():
    p = prompts.phind_v2("hi", system="Be terse.")
    assert p.text == "### System Prompt\nBe terse.\n\n### User Message\nhi\n\n### Assistant\n"


def test_phind_v1_matches_model_card():
    assert prompts.build("phind-v1", "Write a quicksort in Python").text == "Write a quicksort in Python\n: "


def test_raw_is_untouched():
    assert prompts.build("raw", "def f(x):\n    ").text == "def f(x):\n    "


CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
          " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def test_chat_template_renders_and_stops_at_eos():
    p = prompts.build("chat", "hello", chat_template=CHATML, system="sys", eos_token="<|im_end|>")
    assert p.text == "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
    assert p.stop == ["<|im_end|>"]


def test_chat_template_drops_duplicate_bos():
    p = prompts.chat("x", "{{ bos_token }}[INST] {{ messages[0]['content'] }} [/INST]", bos_token="<s>")
    assert p.text == "[INST] x [/INST]"


def test_hostile_chat_template_cannot_reach_python():
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(prompts.ChatTemplateError):
        prompts.chat("x", evil)


@pytest.mark.parametrize("name,template,expected", [
    ("phind-codellama-34b-v2.Q4_K_M.gguf", None, "phind-v2"),
    ("Phind-CodeLlama-34B-Python-v1", None, "phind-v1"),
    ("phind-codellama-34b-v1.Q5_K_M.gguf", "{{x}}", "phind-v1"),
    ("SmolLM2", CHATML, "chat"),
    ("codellama-7b.Q4_K_M.gguf", None, "raw"),
])
def test_format_is_picked_from_name_and_metadata(name, template, expected):
    assert prompts.pick_format(name, template) == expected


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="unknown prompt format"):
        prompts.build("alpaca", "x")


# --- issue 11 item 17: an untrusted template is rendered within limits ----------------------

@pytest.mark.parametrize("template,why", [
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loop steps"),
    ("{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}", "output"),
    ("{{ 'x' * 10000000000 }}", "sequence"),
    ("{{ 7 ** 999999999 }}", "power"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "RecursionError"),
])
def test_hostile_template_is_stopped_with_a_reason(template, why):
    with pytest.raises(prompts.ChatTemplateError, match=why):
        prompts.chat("x", template)


def test_template_that_keeps_calling_is_stopped_by_the_time_limit():
    slow = ("{% set ns = namespace(s='') %}{% for i in range(900000) %}"
            "{% set ns.s = (ns.s ~ 'ab')[-50:] | replace('a', 'b') | upper | lower %}{% endfor %}")
    with pytest.raises(prompts.ChatTemplateError, match="took more than 0.2 s|too long"):
        prompts.render_template(slow, timeout_s=0.2, messages=[])


def test_syntax_error_says_so():
    with pytest.raises(prompts.ChatTemplateError, match=r"syntax error \(line 1\)"):
        prompts.chat("x", "{% for m in messages %}{{ m.content }}")
    with pytest.raises(prompts.ChatTemplateError, match="syntax error"):
        prompts.check_template("{{ 1 + }}")
    prompts.check_template(CHATML)


def test_template_refusal_is_reported_as_the_templates():
    t = "{{ raise_exception('Conversation roles must alternate') }}"
    with pytest.raises(prompts.ChatTemplateError, match="Conversation roles must alternate"):
        prompts.chat("x", t)
