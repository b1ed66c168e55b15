//! Mock LLM upstream speaking the Anthropic Messages, OpenAI Chat Completions and Responses wire formats.
