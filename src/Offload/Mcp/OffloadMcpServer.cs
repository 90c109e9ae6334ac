using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

// MCPEXP002: custom request handlers and alternate results, the SDK's way for extensions such as Tasks, are marked
// "for evaluation" in 2.4.0; nothing else in the SDK answers a task-augmented tools/call.
#pragma warning disable MCPEXP002

namespace Offload.Cli.Mcp;

/// <summary>
/// The MCP server's options, whatever carries it: <c>offload mcp</c> puts them on stdio; an HTTP host can pass the same
/// to <c>McpServer.Create</c> over a Streamable HTTP transport. Low-level handlers with explicit tool definitions and
/// source-generated JSON, no reflection over attributes: the CLI is Native AOT.
/// </summary>
public static class OffloadMcpServer
{
    public const string Name = "offload";

    public const string Instructions =
        "Offload runs coding agents in the background, each in its own git worktree and branch. Hand it long or separable work " +
        "with offload_run (it returns a task id at once), keep working, then collect the result with offload_wait (it gives the " +
        "task's summary), review with offload_diff and bring the changes in with offload_merge. A task that needs an approval " +
        "waits in needs_input: offload_status shows the question, offload_approve or offload_deny answers it.";

    public static McpServerOptions Options(OffloadTools tools, McpTasks tasks)
    {
        var options = new McpServerOptions
        {
            ServerInfo = new Implementation { Name = Name, Title = "Offload", Version = DaemonClient.Version },
            ServerInstructions = Instructions,
            Capabilities = new ServerCapabilities { Tools = new ToolsCapability { ListChanged = false } },
            Handlers = new McpServerHandlers
            {
                ListToolsHandler = (_, _) => ValueTask.FromResult(new ListToolsResult { Tools = [.. OffloadTools.Tools] }),
                CallToolWithAlternateHandler = async (request, cancellationToken) =>
                {
                    var call = request.Params ?? new CallToolRequestParams { Name = "" };
                    if (McpTasks.TaskField(request.JsonRpcRequest) is not null)
                    {
                        return await tasks.CreateAsync(call, request.Server, cancellationToken);
                    }

                    return await tools.CallAsync(call.Name, call.Arguments, request.Server, call.ProgressToken, cancellationToken);
                },
            },
            RequestHandlers = [.. tasks.Handlers()],
        };
        options.Filters.Message.OutgoingFilters.Add(McpTasks.Advertise);
        return options;
    }
}
