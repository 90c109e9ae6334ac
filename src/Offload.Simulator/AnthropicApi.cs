using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Offload.Simulator;

/// <summary>The Anthropic Messages API: POST /v1/messages, streamed as named SSE events.</summary>
internal sealed class AnthropicApi : ModelApi
{
    public static readonly AnthropicApi Instance = new();

    public override string MessageIdPrefix => "msg_sim_";

    public override string Name => "anthropic";

    public override ConversationView Read(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException("The request body must be a JSON object.");
        }

        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("messages: Field required (an array of messages).");
        }

        var assistants = 0;
        string? first = null;
        var last = "";
        var sendsThinking = false;
        foreach (var message in messages.EnumerateArray())
        {
            var role = message.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
            if (role == "assistant")
            {
                assistants++;
                sendsThinking |= message.TryGetProperty("content", out var blocks) && blocks.ValueKind == JsonValueKind.Array
                    && blocks.EnumerateArray().Any(b => b.ValueKind == JsonValueKind.Object && b.TryGetProperty("type", out var bt)
                        && (bt.ValueEquals("thinking"u8) || bt.ValueEquals("redacted_thinking"u8)));
            }
            else if (role == "user")
            {
                last = message.TryGetProperty("content", out var content) ? TextOf(content) : "";
                first ??= last;
            }
        }

        return new ConversationView(
            root.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.String ? model.GetString() : null,
            root.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True,
            IncludeUsage: true,
            assistants,
            first ?? "",
            last,
            Thinks: root.TryGetProperty("thinking", out var thinking) && thinking.ValueKind == JsonValueKind.Object
                && thinking.TryGetProperty("type", out var type) && (type.ValueEquals("adaptive"u8) || type.ValueEquals("enabled"u8)),
            sendsThinking);
    }

    public override string ErrorBody(int status, string message) =>
        Json(new JsonObject
        {
            ["type"] = "error",
            ["error"] = new JsonObject { ["type"] = ErrorType(status), ["message"] = message },
        });

    public override string ContextOverflowBody(int tokens, int window) =>
        ErrorBody(400, $"prompt is too long: {tokens} tokens > {window} maximum");

    public override SseEvent ErrorEvent(string message) =>
        new("error", Json(new JsonObject
        {
            ["type"] = "error",
            ["error"] = new JsonObject { ["type"] = "overloaded_error", ["message"] = message },
        }));

    public override SseEvent MalformedEvent() =>
        new("content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"trunc""");

    public override string ToolCallId(int turnIndex, int callIndex) => $"toolu_sim_{turnIndex}_{callIndex}";

    public override IReadOnlyList<SseEvent> StreamEvents(Reply reply, ConversationView request)
    {
        var events = new List<SseEvent>
        {
            new("message_start", Json(new JsonObject
            {
                ["type"] = "message_start",
                ["message"] = new JsonObject
                {
                    ["id"] = reply.Id,
                    ["type"] = "message",
                    ["role"] = "assistant",
                    ["model"] = reply.Model,
                    ["content"] = new JsonArray(),
                    ["stop_reason"] = null,
                    ["stop_sequence"] = null,
                    ["usage"] = Usage(reply, 1),
                },
            })),
        };

        var index = 0;
        foreach (var (type, value, proof) in reply.Thinking ?? [])
        {
            if (type == "thinking")
            {
                events.Add(BlockStart(index, new JsonObject { ["type"] = "thinking", ["thinking"] = "", ["signature"] = "" }));
                foreach (var chunk in Chunks(value, minParts: 2, maxChunk: 48))
                {
                    events.Add(BlockDelta(index, new JsonObject { ["type"] = "thinking_delta", ["thinking"] = chunk }));
                }

                events.Add(BlockDelta(index, new JsonObject { ["type"] = "signature_delta", ["signature"] = proof }));
            }
            else
            {
                events.Add(BlockStart(index, new JsonObject { ["type"] = "redacted_thinking", ["data"] = proof }));
            }

            events.Add(BlockStop(index++));
        }

        if (reply.Text.Length > 0 || !reply.UsesTools)
        {
            events.Add(BlockStart(index, new JsonObject { ["type"] = "text", ["text"] = "" }));
            foreach (var chunk in Chunks(reply.Text, minParts: 2, maxChunk: 48))
            {
                events.Add(BlockDelta(index, new JsonObject { ["type"] = "text_delta", ["text"] = chunk }));
            }

            events.Add(BlockStop(index++));
        }

        for (var i = 0; i < reply.ToolCalls.Count; i++)
        {
            var call = reply.ToolCalls[i];
            events.Add(BlockStart(index, new JsonObject
            {
                ["type"] = "tool_use",
                ["id"] = ToolCallId(reply.TurnIndex, i),
                ["name"] = call.Name,
                ["input"] = new JsonObject(),
            }));
            foreach (var chunk in Chunks(InputJson(call.Input), minParts: 2, maxChunk: 64))
            {
                events.Add(BlockDelta(index, new JsonObject { ["type"] = "input_json_delta", ["partial_json"] = chunk }));
            }

            events.Add(BlockStop(index++));
        }

        events.Add(new("message_delta", Json(new JsonObject
        {
            ["type"] = "message_delta",
            ["delta"] = new JsonObject { ["stop_reason"] = StopReason(reply), ["stop_sequence"] = null },
            ["usage"] = Usage(reply, reply.OutputTokens),
        })));
        events.Add(new("message_stop", """{"type":"message_stop"}"""));
        return events;
    }

    public override string Message(Reply reply)
    {
        var content = new JsonArray();
        foreach (var (type, value, proof) in reply.Thinking ?? [])
        {
            content.Add((JsonNode)(type == "thinking"
                ? new JsonObject { ["type"] = "thinking", ["thinking"] = value, ["signature"] = proof }
                : new JsonObject { ["type"] = "redacted_thinking", ["data"] = proof }));
        }

        if (reply.Text.Length > 0 || !reply.UsesTools)
        {
            content.Add((JsonNode)new JsonObject { ["type"] = "text", ["text"] = reply.Text });
        }

        for (var i = 0; i < reply.ToolCalls.Count; i++)
        {
            content.Add((JsonNode)new JsonObject
            {
                ["type"] = "tool_use",
                ["id"] = ToolCallId(reply.TurnIndex, i),
                ["name"] = reply.ToolCalls[i].Name,
                ["input"] = ToNode(reply.ToolCalls[i].Input),
            });
        }

        return Json(new JsonObject
        {
            ["id"] = reply.Id,
            ["type"] = "message",
            ["role"] = "assistant",
            ["model"] = reply.Model,
            ["content"] = content,
            ["stop_reason"] = StopReason(reply),
            ["stop_sequence"] = null,
            ["usage"] = Usage(reply, reply.OutputTokens),
        });
    }

    private static string StopReason(Reply reply) => reply.CutOff ? "max_tokens" : reply.UsesTools ? "tool_use" : "end_turn";

    private static JsonObject Usage(Reply reply, int output) => new()
    {
        ["input_tokens"] = Math.Max(0, reply.InputTokens - reply.CacheReadTokens - reply.CacheWriteTokens),
        ["cache_creation_input_tokens"] = reply.CacheWriteTokens,
        ["cache_read_input_tokens"] = reply.CacheReadTokens,
        ["output_tokens"] = output,
    };

    private static SseEvent BlockStart(int index, JsonObject block) =>
        new("content_block_start", Json(new JsonObject { ["type"] = "content_block_start", ["index"] = index, ["content_block"] = block }));

    private static SseEvent BlockDelta(int index, JsonObject delta) =>
        new("content_block_delta", Json(new JsonObject { ["type"] = "content_block_delta", ["index"] = index, ["delta"] = delta }));

    private static SseEvent BlockStop(int index) =>
        new("content_block_stop", Json(new JsonObject { ["type"] = "content_block_stop", ["index"] = index }));

    private static string ErrorType(int status) => status switch
    {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };

    /// <summary>The text a user message carries: its string content, text blocks and tool results.</summary>
    internal static string TextOf(JsonElement content)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString() ?? "";
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            return "";
        }

        var text = new StringBuilder();
        foreach (var block in content.EnumerateArray())
        {
            if (block.ValueKind != JsonValueKind.Object || !block.TryGetProperty("type", out var type))
            {
                continue;
            }

            var piece = type.GetString() switch
            {
                "text" when block.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String => t.GetString(),
                "tool_result" when block.TryGetProperty("content", out var c) => TextOf(c),
                _ => null,
            };
            if (!string.IsNullOrEmpty(piece))
            {
                text.Append(text.Length > 0 ? "\n" : "").Append(piece);
            }
        }

        return text.ToString();
    }
}
