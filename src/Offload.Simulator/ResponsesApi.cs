using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Offload.Simulator;

/// <summary>
/// The OpenAI Responses API: POST /v1/responses, as Codex CLI speaks it (<c>wire_api = "responses"</c>). The
/// conversation is the <c>input</c> array of items; one model answer is a run of output items (an assistant
/// <c>message</c>, <c>function_call</c>s, <c>reasoning</c>) between the inputs. A scenario turn becomes an assistant
/// message with its text and one <c>function_call</c> per tool call (its name and input as they are: Codex's tools
/// are <c>exec_command</c> with <c>cmd</c>, …). Streamed as named SSE events, <c>response.created</c> to
/// <c>response.completed</c> with the usage.
/// </summary>
internal sealed class ResponsesApi : ModelApi
{
    public static readonly ResponsesApi Instance = new();

    /// <summary>User messages Codex adds before the prompt (its environment, AGENTS.md): not the prompt a scenario is picked by.</summary>
    private static readonly string[] ContextPrefixes = ["<environment_context>", "<user_instructions>", "# AGENTS.md instructions", "<permissions instructions>"];

    public override string MessageIdPrefix => "resp_sim_";

    public override string Name => "responses";

    public override ConversationView Read(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException("The request body must be a JSON object.");
        }

        if (!root.TryGetProperty("input", out var input) || input.ValueKind is not (JsonValueKind.Array or JsonValueKind.String))
        {
            throw new FormatException("'input' is a required property (a string or an array of input items).");
        }

        var answers = 0;
        var inAnswer = false;
        string? first = null;
        var sinceAnswer = new StringBuilder();
        var lastUser = "";
        var items = input.ValueKind == JsonValueKind.String ? [] : input.EnumerateArray().ToList();
        if (input.ValueKind == JsonValueKind.String)
        {
            first = lastUser = input.GetString() ?? "";
            sinceAnswer.Append(first);
        }

        foreach (var item in items)
        {
            var type = Str(item, "type") ?? (item.TryGetProperty("role", out _) ? "message" : null);
            var role = Str(item, "role");
            if (type is "function_call" or "custom_tool_call" or "local_shell_call" or "reasoning" or "web_search_call" || type == "message" && role == "assistant")
            {
                if (!inAnswer)
                {
                    answers++;
                    inAnswer = true;
                    sinceAnswer.Clear();
                }

                continue;
            }

            string? text = type switch
            {
                "message" when role == "user" => TextOf(item),
                "function_call_output" or "custom_tool_call_output" => item.TryGetProperty("output", out var output) ? OutputText(output) : "",
                _ => null,
            };
            if (text is null)
            {
                continue; // developer and system messages
            }

            inAnswer = false;
            if (type == "message" && !ContextPrefixes.Any(p => text.StartsWith(p, StringComparison.Ordinal)))
            {
                first ??= text;
            }

            lastUser = text;
            sinceAnswer.Append(sinceAnswer.Length > 0 ? "\n" : "").Append(text);
        }

        return new ConversationView(
            Str(root, "model"),
            root.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True,
            IncludeUsage: true,
            answers,
            first ?? "",
            sinceAnswer.Length > 0 ? sinceAnswer.ToString() : lastUser);
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
                ["message"] = $"Your input exceeds the context window of this model. ({tokens} tokens; the window is {window}.)",
                ["type"] = "invalid_request_error",
                ["param"] = "input",
                ["code"] = "context_length_exceeded",
            },
        });

    /// <summary>A failed response inside a 200 stream (<c>response.failed</c>), as the API ends a stream on a server error.</summary>
    public override SseEvent ErrorEvent(string message) =>
        new("response.failed", Json(new JsonObject
        {
            ["type"] = "response.failed",
            ["response"] = new JsonObject
            {
                ["id"] = "resp_sim_failed",
                ["object"] = "response",
                ["status"] = "failed",
                ["error"] = new JsonObject { ["code"] = "server_error", ["message"] = message },
                ["output"] = new JsonArray(),
            },
        }));

    public override SseEvent MalformedEvent() =>
        new("response.output_text.delta", """{"type":"response.output_text.delta","item_id":"msg_sim","delta":"trunc""");

    public override string ToolCallId(int turnIndex, int callIndex) => $"call_sim_{turnIndex}_{callIndex}";

    public override IReadOnlyList<SseEvent> StreamEvents(Reply reply, ConversationView request)
    {
        var events = new List<SseEvent>();
        var sequence = 0;
        void Add(string type, JsonObject data)
        {
            data["type"] = type;
            data["sequence_number"] = sequence++;
            events.Add(new SseEvent(type, Json(data)));
        }

        Add("response.created", new JsonObject { ["response"] = Response(reply, "in_progress", new JsonArray(), usage: false) });
        Add("response.in_progress", new JsonObject { ["response"] = Response(reply, "in_progress", new JsonArray(), usage: false) });
        var output = Output(reply);
        for (var index = 0; index < output.Count; index++)
        {
            var item = output[index]!.AsObject();
            var id = item["id"]!.GetValue<string>();
            if (item["type"]!.GetValue<string>() == "message")
            {
                var text = reply.Text;
                Add("response.output_item.added", new JsonObject
                {
                    ["output_index"] = index,
                    ["item"] = new JsonObject { ["id"] = id, ["type"] = "message", ["status"] = "in_progress", ["role"] = "assistant", ["content"] = new JsonArray() },
                });
                Add("response.content_part.added", new JsonObject
                {
                    ["item_id"] = id, ["output_index"] = index, ["content_index"] = 0,
                    ["part"] = new JsonObject { ["type"] = "output_text", ["text"] = "", ["annotations"] = new JsonArray() },
                });
                foreach (var piece in Chunks(text, minParts: 2, maxChunk: 48))
                {
                    Add("response.output_text.delta", new JsonObject { ["item_id"] = id, ["output_index"] = index, ["content_index"] = 0, ["delta"] = piece });
                }

                Add("response.output_text.done", new JsonObject { ["item_id"] = id, ["output_index"] = index, ["content_index"] = 0, ["text"] = text });
                Add("response.content_part.done", new JsonObject
                {
                    ["item_id"] = id, ["output_index"] = index, ["content_index"] = 0,
                    ["part"] = new JsonObject { ["type"] = "output_text", ["text"] = text, ["annotations"] = new JsonArray() },
                });
            }
            else
            {
                var arguments = item["arguments"]!.GetValue<string>();
                Add("response.output_item.added", new JsonObject
                {
                    ["output_index"] = index,
                    ["item"] = new JsonObject
                    {
                        ["id"] = id, ["type"] = "function_call", ["status"] = "in_progress",
                        ["call_id"] = item["call_id"]!.DeepClone(), ["name"] = item["name"]!.DeepClone(), ["arguments"] = "",
                    },
                });
                foreach (var piece in Chunks(arguments, minParts: 2, maxChunk: 64))
                {
                    Add("response.function_call_arguments.delta", new JsonObject { ["item_id"] = id, ["output_index"] = index, ["delta"] = piece });
                }

                Add("response.function_call_arguments.done", new JsonObject { ["item_id"] = id, ["output_index"] = index, ["arguments"] = arguments });
            }

            Add("response.output_item.done", new JsonObject { ["output_index"] = index, ["item"] = item.DeepClone() });
        }

        Add("response.completed", new JsonObject { ["response"] = Response(reply, reply.CutOff ? "incomplete" : "completed", output, usage: true) });
        return events;
    }

    public override string Message(Reply reply) => Json(Response(reply, reply.CutOff ? "incomplete" : "completed", Output(reply), usage: true));

    private JsonArray Output(Reply reply)
    {
        var output = new JsonArray();
        if (reply.Text.Length > 0 || !reply.UsesTools)
        {
            output.Add((JsonNode)new JsonObject
            {
                ["id"] = "msg_sim_" + reply.Id[MessageIdPrefix.Length..],
                ["type"] = "message",
                ["status"] = "completed",
                ["role"] = "assistant",
                ["content"] = new JsonArray(new JsonObject { ["type"] = "output_text", ["text"] = reply.Text, ["annotations"] = new JsonArray() }),
            });
        }

        for (var i = 0; i < reply.ToolCalls.Count; i++)
        {
            output.Add((JsonNode)new JsonObject
            {
                ["id"] = $"fc_sim_{reply.TurnIndex}_{i}",
                ["type"] = "function_call",
                ["status"] = "completed",
                ["call_id"] = ToolCallId(reply.TurnIndex, i),
                ["name"] = reply.ToolCalls[i].Name,
                ["arguments"] = InputJson(reply.ToolCalls[i].Input),
            });
        }

        return output;
    }

    private static JsonObject Response(Reply reply, string status, JsonArray output, bool usage)
    {
        var response = new JsonObject
        {
            ["id"] = reply.Id,
            ["object"] = "response",
            ["created_at"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["status"] = status,
            ["model"] = reply.Model,
            ["output"] = output.DeepClone(),
        };
        if (status == "incomplete")
        {
            response["incomplete_details"] = new JsonObject { ["reason"] = "max_output_tokens" };
        }

        if (usage)
        {
            response["usage"] = new JsonObject
            {
                ["input_tokens"] = reply.InputTokens,
                ["input_tokens_details"] = new JsonObject { ["cached_tokens"] = reply.CacheReadTokens },
                ["output_tokens"] = reply.OutputTokens,
                ["output_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0 },
                ["total_tokens"] = reply.InputTokens + reply.OutputTokens,
            };
        }

        return response;
    }

    /// <summary>A message's text: a string content, or its <c>input_text</c>/<c>output_text</c> parts.</summary>
    private static string TextOf(JsonElement message)
    {
        if (!message.TryGetProperty("content", out var content))
        {
            return "";
        }

        return content.ValueKind switch
        {
            JsonValueKind.String => content.GetString() ?? "",
            JsonValueKind.Array => string.Join("\n", content.EnumerateArray().Select(p => Str(p, "text")).OfType<string>()),
            _ => "",
        };
    }

    /// <summary>A tool output: a string, or content parts.</summary>
    private static string OutputText(JsonElement output) => output.ValueKind switch
    {
        JsonValueKind.String => output.GetString() ?? "",
        JsonValueKind.Array => string.Join("\n", output.EnumerateArray().Select(p => Str(p, "text")).OfType<string>()),
        _ => output.GetRawText(),
    };

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
