using System.CommandLine;
using ModelContextProtocol.Server;
using Offload.Cli.Mcp;
using Offload.Config;

namespace Offload.Cli.Commands;

/// <summary><c>offload mcp</c>: Offload as an MCP server over stdio, for agents that hand work to it (docs/mcp.md).</summary>
public static class McpCommand
{
    public static Command Create()
    {
        var command = new Command("mcp", """
            Serve Offload to MCP clients over stdio (Claude Code, Codex, Cursor…): tools offload_run, offload_status, offload_logs,
            offload_wait, offload_reply, offload_approve, offload_deny, offload_cancel, offload_diff, offload_merge, offload_list and
            offload_compare; offload_run also runs as an MCP task (2025-11-25: tasks/get, tasks/result, status notifications).
            Tasks run in the repository of the server's working directory unless a call names another.
              Claude Code:  claude mcp add offload -- offload mcp
              Codex:        codex mcp add offload -- offload mcp
              Cursor:       .cursor/mcp.json {"mcpServers":{"offload":{"command":"offload","args":["mcp"]}}}
            docs/mcp.md has the tools and their errors
            """);
        command.SetAction(async (_, ct) =>
        {
            using var client = new DaemonClient(OffloadPaths.FromEnvironment());
            var tools = new OffloadTools(client, Directory.GetCurrentDirectory());
            await using var tasks = new McpTasks(tools);
            var options = OffloadMcpServer.Options(tools, tasks);
            await using var transport = new StdioServerTransport(options);
            await using var server = McpServer.Create(transport, options);
            try
            {
                await server.RunAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
