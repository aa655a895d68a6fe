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
