using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Offload.Tests.EndToEnd;

namespace Offload.Tests.Mcp;

/// <summary>
/// The official MCP TypeScript client (<c>@modelcontextprotocol/sdk</c>, which <c>scripts/test-deps.sh</c> installs in
/// <c>.tools/mcp-sdk</c>), run by node through <c>mcp-client.mjs</c> against the real <c>offload mcp</c> of a harness.
/// Tests that need it fail (never skip) when it is missing.
/// </summary>
public static class McpClient
{
    public static string Sdk { get; } = Find(Path.Combine(".tools", "mcp-sdk"), Path.Combine("node_modules", "@modelcontextprotocol", "sdk", "package.json"),
        "The MCP TypeScript SDK is not installed for the tests: run scripts/test-deps.sh (it installs @modelcontextprotocol/sdk into .tools/mcp-sdk).");

    private static string Script([CallerFilePath] string sourceFile = "") => Path.Combine(Path.GetDirectoryName(sourceFile)!, "mcp-client.mjs");

    public static object List() => new { op = "list" };

    public static object Call(string name, object arguments) => new { op = "call", name, arguments };

    /// <summary>A task-augmented call (MCP Tasks, 2025-11-25), followed to its end by the SDK's task stream.</summary>
    public static object AsTask(string name, object arguments) => new { op = "task", name, arguments };

    public static object Request(string method, object @params) => new { op = "request", method, @params };

    /// <summary>
    /// Runs <c>offload mcp</c> in <paramref name="cwd"/> (default: the harness's repository) under the client and the
    /// steps in order; returns one element per line it printed: the connection first, then one per step.
    /// </summary>
    public static async Task<IReadOnlyList<JsonElement>> RunAsync(OffloadHarness h, IEnumerable<object> steps, string? cwd = null, int timeoutSeconds = 240)
    {
        var env = h.Env.Where(e => e.Value is not null).ToDictionary(e => e.Key, e => e.Value!);
        env.TryAdd("PATH", Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin");
        var input = JsonSerializer.Serialize(new { sdk = Sdk, command = OffloadHarness.Executable, args = new[] { "mcp" }, cwd = cwd ?? h.Repo, env, steps });

        var start = new ProcessStartInfo("node") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Script());
        using var node = Process.Start(start)!;
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        await node.StandardInput.WriteAsync(input);
        node.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            await node.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            node.Kill(entireProcessTree: true);
            throw new TimeoutException($"the MCP client did not finish within {timeoutSeconds} s; it printed:\n{await stdout}\n{await stderr}");
        }

        Assert.True(node.ExitCode == 0, $"the MCP client exited {node.ExitCode}:\n{await stdout}\n{await stderr}");
        return [.. (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    /// <summary>The text of a tool call's result, and whether it is a tool error.</summary>
    public static (string Text, bool IsError) Text(JsonElement line)
    {
        Assert.True(line.TryGetProperty("result", out var result), $"the call failed at the protocol level: {line}");
        var text = string.Concat(result.GetProperty("content").EnumerateArray().Select(c => c.GetProperty("text").GetString()));
        return (text, result.TryGetProperty("isError", out var e) && e.GetBoolean());
    }

    internal static string Find(string folder, string marker, string missing, [CallerFilePath] string sourceFile = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile)!, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, folder);
                if (File.Exists(Path.Combine(candidate, marker)))
                {
                    return candidate;
                }
            }
        }

        throw new InvalidOperationException(missing);
    }
}
