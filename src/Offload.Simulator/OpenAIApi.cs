using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Offload.Simulator;

/// <summary>The OpenAI Chat Completions API: POST /v1/chat/completions, streamed as data-only SSE chunks.</summary>
internal sealed class OpenAIApi : ModelApi
{
    public static readonly OpenAIApi Instance = new();

    public override string MessageIdPrefix => "chatcmpl-sim-";

    public override string Name => "openai";

    public override ConversationView Read(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException("The request body must be a JSON object.");
        }

        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("'messages' is a required property (an array of messages).");
        }

        var assistants = 0;
        string? first = null;
        var sinceAssistant = new StringBuilder();
        var lastUser = "";
        foreach (var message in messages.EnumerateArray())
        {
            var role = message.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
            if (role == "assistant")
            {
                assistants++;
                sinceAssistant.Clear();
            }
            else if (role is "user" or "tool")
            {
                var text = message.TryGetProperty("content", out var content) ? TextOf(content) : "";
                if (role == "user")
                {
                    first ??= text;
                }

                lastUser = text;
                sinceAssistant.Append(sinceAssistant.Length > 0 ? "\n" : "").Append(text);
            }
        }

        var includeUsage = root.TryGetProperty("stream_options", out var options)
            && options.ValueKind == JsonValueKind.Object
            && options.TryGetProperty("include_usage", out var include)
            && include.ValueKind == JsonValueKind.True;
        return new ConversationView(
            root.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.String ? model.GetString() : null,
            root.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True,
            includeUsage,
            assistants,
            first ?? "",
            sinceAssistant.Length > 0 ? sinceAssistant.ToString() : lastUser);
    }

    public override string ErrorBody(int status, string message)
    {
        var (type, code) = status switch
        {
            400 => ("invalid_request_error", "invalid_request"),
            401 => ("authentication_error", "invalid_api_key"),
            403 => ("permission_error", "permission_denied"),
            404 => ("invalid_request_error", "model_not_found"),
            429 => ("rate_limit_error", "rate_limit_exceeded"),
            529 => ("server_error", "overloaded"),
            _ => ("server_error", "server_error"),
        };
        return Json(new JsonObject
        {
            ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = code },
        });
    }

    public override string ContextOverflowBody(int tokens, int window) =>
        Json(new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["message"] = $"This model's maximum context length is {window} tokens. However, your messages resulted in {tokens} tokens. Please reduce the length of the messages.",
                ["type"] = "invalid_request_error",
                ["param"] = "messages",
                ["code"] = "context_length_exceeded",
            },
        });

    public override SseEvent ErrorEvent(string message) =>
        new(null, Json(new JsonObject
        {
            ["error"] = new JsonObject { ["message"] = message, ["type"] = "server_error", ["param"] = null, ["code"] = "overloaded" },
        }));

    public override SseEvent MalformedEvent() =>
        new(null, """{"id":"chatcmpl-sim","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"trunc""");

    public override string ToolCallId(int turnIndex, int callIndex) => $"call_sim_{turnIndex}_{callIndex}";

    public override IReadOnlyList<SseEvent> StreamEvents(Reply reply, ConversationView request)
    {
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        JsonObject Chunk(JsonObject delta, string? finishReason) => new()
        {
            ["id"] = reply.Id,
            ["object"] = "chat.completion.chunk",
            ["created"] = created,
            ["model"] = reply.Model,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finishReason }),
        };

        var events = new List<SseEvent> { new(null, Json(Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null))) };
        foreach (var piece in Chunks(reply.Text, minParts: 2, maxChunk: 48))
        {
            events.Add(new(null, Json(Chunk(new JsonObject { ["content"] = piece }, null))));
        }

        for (var i = 0; i < reply.ToolCalls.Count; i++)
        {
            var call = reply.ToolCalls[i];
            events.Add(new(null, Json(Chunk(ToolCallsDelta(new JsonObject
            {
                ["index"] = i,
                ["id"] = ToolCallId(reply.TurnIndex, i),
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = "" },
            }), null))));
            foreach (var piece in Chunks(InputJson(call.Input), minParts: 2, maxChunk: 64))
            {
                events.Add(new(null, Json(Chunk(ToolCallsDelta(new JsonObject
                {
                    ["index"] = i,
                    ["function"] = new JsonObject { ["arguments"] = piece },
                }), null))));
            }
        }

        events.Add(new(null, Json(Chunk(new JsonObject(), FinishReason(reply)))));
        if (request.IncludeUsage)
        {
            events.Add(new(null, Json(new JsonObject
            {
                ["id"] = reply.Id,
                ["object"] = "chat.completion.chunk",
                ["created"] = created,
                ["model"] = reply.Model,
                ["choices"] = new JsonArray(),
                ["usage"] = Usage(reply),
            })));
        }

        events.Add(new(null, "[DONE]"));
        return events;
    }

    public override string Message(Reply reply)
    {
        var message = new JsonObject { ["role"] = "assistant", ["content"] = reply.Text.Length > 0 || !reply.UsesTools ? reply.Text : null };
        if (reply.UsesTools)
        {
            var calls = new JsonArray();
            for (var i = 0; i < reply.ToolCalls.Count; i++)
            {
                calls.Add((JsonNode)new JsonObject
                {
                    ["id"] = ToolCallId(reply.TurnIndex, i),
                    ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = reply.ToolCalls[i].Name, ["arguments"] = InputJson(reply.ToolCalls[i].Input) },
                });
            }

            message["tool_calls"] = calls;
        }

        return Json(new JsonObject
        {
            ["id"] = reply.Id,
            ["object"] = "chat.completion",
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = reply.Model,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = message, ["finish_reason"] = FinishReason(reply) }),
            ["usage"] = Usage(reply),
        });
    }

    private static JsonObject ToolCallsDelta(JsonObject call) => new() { ["tool_calls"] = new JsonArray(call) };

    private static string FinishReason(Reply reply) => reply.CutOff ? "length" : reply.UsesTools ? "tool_calls" : "stop";

    private static JsonObject Usage(Reply reply) => new()
    {
        ["prompt_tokens"] = reply.InputTokens,
        ["completion_tokens"] = reply.OutputTokens,
        ["total_tokens"] = reply.InputTokens + reply.OutputTokens,
    };

    /// <summary>The text of a message's content: a string or an array of text parts.</summary>
    private static string TextOf(JsonElement content)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString() ?? "";
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            return "";
        }

        return string.Join("\n", content.EnumerateArray()
            .Where(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
            .Select(p => p.GetProperty("text").GetString()));
    }
}
