using System.Text.RegularExpressions;
using System.Text.Json.Nodes;

namespace Offload.Simulator.Tests;

/// <summary>The whole bytes of a streamed answer, so a change to the wire format is a visible diff.</summary>
public sealed partial class WireFormatTests
{
    private const string Script = """
        { "name": "wire", "turns": [ { "text": "Hi there, friend.", "toolCalls": [ { "name": "Bash", "input": { "command": "ls" } } ] } ] }
        """;

    [Fact]
    public async Task AnthropicStream_IsExactlyTheDocumentedEventSequence()
    {
        await using var server = await Sim.StartAsync(Script);
        using var client = Sim.Client(server);
        var body = Sim.Anthropic(true, Sim.User("hi"));
        var input = body.ToJsonString().Length / 4;

        using var response = await Sim.PostAsync(client, "v1/messages", body);
        var text = Normalize(await response.Content.ReadAsStringAsync());

        var usage = $$"""{"input_tokens":{{input}},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":""";
        Assert.Equal(
            $$$$"""
            event: message_start
            data: {"type":"message_start","message":{"id":"ID","type":"message","role":"assistant","model":"claude-test","content":[],"stop_reason":null,"stop_sequence":null,"usage":{{{{usage}}}}1}}}

            event: content_block_start
            data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi there,"}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" friend."}}

            event: content_block_stop
            data: {"type":"content_block_stop","index":0}

            event: content_block_start
            data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_sim_0_0","name":"Bash","input":{}}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"comman"}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"d\":\"ls\"}"}}

            event: content_block_stop
            data: {"type":"content_block_stop","index":1}

            event: message_delta
            data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{{{{usage}}}}9}}

            event: message_stop
            data: {"type":"message_stop"}


            """,
            text);
    }

    [Fact]
    public async Task OpenAIStream_IsExactlyTheDocumentedChunkSequence()
    {
        await using var server = await Sim.StartAsync(Script);
        using var client = Sim.Client(server);
        var body = Sim.OpenAI(true, Sim.User("hi"));
        var input = body.ToJsonString().Length / 4;

        using var response = await Sim.PostAsync(client, "v1/chat/completions", body);
        var text = Normalize(await response.Content.ReadAsStringAsync());

        const string Head = """{"id":"ID","object":"chat.completion.chunk","created":0,"model":"gpt-test","choices":""";
        Assert.Equal(
            $$$$"""
            data: {{{{Head}}}}[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

            data: {{{{Head}}}}[{"index":0,"delta":{"content":"Hi there,"},"finish_reason":null}]}

            data: {{{{Head}}}}[{"index":0,"delta":{"content":" friend."},"finish_reason":null}]}

            data: {{{{Head}}}}[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_sim_0_0","type":"function","function":{"name":"Bash","arguments":""}}]},"finish_reason":null}]}

            data: {{{{Head}}}}[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"comman"}}]},"finish_reason":null}]}

            data: {{{{Head}}}}[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"d\":\"ls\"}"}}]},"finish_reason":null}]}

            data: {{{{Head}}}}[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

            data: {{{{Head}}}}[],"usage":{"prompt_tokens":{{{{input}}}},"completion_tokens":9,"total_tokens":{{{{input + 9}}}}}}

            data: [DONE]


            """,
            text);
    }

    private static string Normalize(string sse) =>
        Created().Replace(Id().Replace(sse, "\"id\":\"ID\""), "\"created\":0");

    [GeneratedRegex("\"id\":\"(msg_sim_|chatcmpl-sim-)[0-9a-f]+\"")]
    private static partial Regex Id();

    [GeneratedRegex("\"created\":[0-9]+")]
    private static partial Regex Created();
}
