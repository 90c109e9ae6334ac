using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using Offload.Agent.Permissions;
using Offload.Protocol;

namespace Offload.Engines.Claude;

/// <summary>
/// The MCP tool Claude Code asks when it needs a permission in the background
/// (<c>--permission-prompt-tool mcp__offload__approve</c>), and the daemon's end of a sandboxed
/// Claude Code's model bridge (<see cref="ClaudeModelProxy"/>). Claude Code can only reach an MCP
/// server over HTTP or stdio, and the daemon's API is on a Unix socket, so this is a small
/// separate HTTP server, started on first use, on a Unix socket of its own (bound into each
/// Claude Code sandbox, where <see cref="ClaudeForwarder"/> serves it on the sandbox's loopback)
/// and, when there is no sandbox, on a random loopback port. It serves <c>POST /mcp</c> and the
/// bridge and nothing else (the API stays on the socket). Every run gets a random bearer
/// token, handed to Claude Code in a 0600 config file; a request without a live token gets 401.
/// A question goes through Offload's rules first (<see cref="PermissionPolicy"/>: a deny rule
/// refuses, an allow rule or an earlier <c>approve --always</c> allows), then to the user through the
/// <c>PermissionBroker</c>: the task waits in <c>needs_input</c> until <c>offload approve</c> /
/// <c>offload deny</c>. The builtin engine's background defaults do not apply (see <see cref="CallAsync"/>).
/// </summary>
public sealed class ClaudePermissionServer(PermissionGate gate, Daemon.PermissionBroker broker, Config.OffloadPaths paths, ILoggerFactory loggers) : IAsyncDisposable
{
    public const string ServerName = "offload";
    public const string ToolName = "approve";
    public const string PromptTool = "mcp__" + ServerName + "__" + ToolName;

    private readonly SemaphoreSlim _starting = new(1, 1);
    private readonly ConcurrentDictionary<string, Registration> _runs = new(StringComparer.Ordinal);
    private WebApplication? _app;
    private Uri? _url;
    private bool _started;
    private IHttpContextAccessor? _http;

    /// <summary>A run's pass to the tool: dispose it when the run ends.</summary>
    public sealed class Registration(ClaudePermissionServer server, string token, EngineRun run, PermissionPolicy policy, ClaudeStream stream, CancellationToken cancel) : IDisposable
    {
        public string Token { get; } = token;
        /// <summary>Where the tool is reached from outside a sandbox; null when the server serves only its socket.</summary>
        public Uri? Url { get; init; }

        /// <summary>Where this run's model requests go through the bridge; null when it does not use the bridge.</summary>
        public ClaudeUpstream? Upstream { get; init; }
        internal EngineRun Run { get; } = run;
        internal PermissionPolicy Policy { get; } = policy;
        internal ClaudeStream Stream { get; } = stream;
        internal CancellationToken Cancel { get; } = cancel;

        /// <summary>The <c>--mcp-config</c> JSON that points Claude Code at the tool, at <paramref name="url"/>.</summary>
        public string McpConfig(Uri url) => new JsonObject
        {
            ["mcpServers"] = new JsonObject
            {
                [ServerName] = new JsonObject
                {
                    ["type"] = "http",
                    ["url"] = url.ToString(),
                    ["headers"] = new JsonObject { ["Authorization"] = "Bearer " + Token },
                },
            },
        }.ToJsonString();

        public void Dispose() => server._runs.TryRemove(Token, out _);
    }

    /// <summary>The server's Unix socket: bound into every Claude Code sandbox.</summary>
    public string Socket => Path.Combine(paths.RuntimeDir, "claude-bridge.sock");

    /// <param name="upstream">The model endpoint for this run's bridge; null for a run outside the sandbox.</param>
    public async Task<Registration> RegisterAsync(EngineRun run, ClaudeStream stream, ClaudeUpstream? upstream, CancellationToken cancellationToken)
    {
        var url = await StartAsync(cancellationToken);
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var registration = new Registration(this, token, run, gate.PolicyFor(run, bashContained: false), stream, cancellationToken) { Url = url, Upstream = upstream };
        _runs[token] = registration;
        return registration;
    }

    private async Task<Uri?> StartAsync(CancellationToken cancellationToken)
    {
        await _starting.WaitAsync(cancellationToken);
        try
        {
            if (_started)
            {
                return _url;
            }

            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
            builder.Logging.ClearProviders();
            builder.Services.AddSingleton(loggers);
            var loopback = !Agent.Tools.Sandbox.IsAvailable; // with a sandbox, Claude Code comes through the socket only
            File.Delete(Socket); // a daemon that died left it
            builder.WebHost.ConfigureKestrel(k =>
            {
                k.ListenUnixSocket(Socket);
                if (loopback)
                {
                    k.Listen(IPAddress.Loopback, 0);
                }

                k.Limits.MaxRequestBodySize = null; // a long conversation is one large request
                k.Limits.MinRequestBodyDataRate = null;
                k.Limits.MinResponseDataRate = null; // a model may think for a while between two events
            });
            builder.Services.AddHttpContextAccessor();
            builder.Services.AddMcpServer(o => o.ServerInfo = new Implementation { Name = ServerName, Version = Daemon.DaemonHost.Version })
                .WithHttpTransport(o => o.Stateless = true)
                .WithListToolsHandler((_, _) => ValueTask.FromResult(new ListToolsResult { Tools = [Tool] }))
                .WithCallToolHandler((request, ct) => new ValueTask<CallToolResult>(CallAsync(request.Params, ct)));
            var app = builder.Build();
            app.Use(async (context, next) =>
            {
                if (context.Request.Path.StartsWithSegments(ClaudeModelProxy.PathPrefix.TrimEnd('/')))
                {
                    await ClaudeModelProxy.HandleAsync(context, token => _runs.TryGetValue(token, out var run) ? run.Upstream : null);
                    return;
                }

                var header = context.Request.Headers.Authorization.ToString();
                if (context.Request.Path.StartsWithSegments("/mcp")
                    && header.StartsWith("Bearer ", StringComparison.Ordinal) && _runs.ContainsKey(header["Bearer ".Length..]))
                {
                    await next(context);
                    return;
                }

                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            });
            app.MapMcp("/mcp");
            await app.StartAsync(cancellationToken);
            _http = app.Services.GetRequiredService<IHttpContextAccessor>();
            _app = app;
            _started = true;
            if (app.Urls.FirstOrDefault(u => u.StartsWith("http://127.0.0.1:", StringComparison.Ordinal)) is { } address)
            {
                _url = new Uri(new Uri(address), "/mcp");
            }

            return _url;
        }
        finally
        {
            _starting.Release();
        }
    }

    private static readonly Tool Tool = new()
    {
        Name = ToolName,
        Description = "Answers Claude Code's permission prompts for an Offload task: Offload's rules first, then the user (offload approve / offload deny).",
        InputSchema = JsonElement.Parse(
            """{"type":"object","properties":{"tool_name":{"type":"string"},"input":{"type":"object"},"tool_use_id":{"type":"string"}},"required":["tool_name","input"]}"""),
    };

    private async Task<CallToolResult> CallAsync(CallToolRequestParams? request, CancellationToken cancellationToken)
    {
        var header = _http?.HttpContext?.Request.Headers.Authorization.ToString() ?? "";
        if (request?.Name != ToolName || !header.StartsWith("Bearer ", StringComparison.Ordinal) || !_runs.TryGetValue(header["Bearer ".Length..], out var run))
        {
            return Answer(new JsonObject { ["behavior"] = "deny", ["message"] = "Offload has no run waiting for this permission prompt." });
        }

        var args = request.Arguments ?? new Dictionary<string, JsonElement>();
        var tool = args.TryGetValue("tool_name", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "?";
        var input = args.TryGetValue("input", out var i) ? i.Clone() : JsonElement.Parse("{}");
        var callId = args.TryGetValue("tool_use_id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString()! : "";

        var decision = run.Policy.Decide(tool, input);
        if (decision.Behavior == PermissionBehavior.Deny)
        {
            return Deny(run, callId, $"Permission denied: {decision.Why}. This call will not run; do the task another way or explain what you needed in your final answer.");
        }

        // Only a rule allows here: the builtin engine's defaults assume its own confined tools, and Claude Code
        // asks precisely about what its settings do not allow (commands, files outside the worktree, its settings).
        if (decision.Behavior == PermissionBehavior.Allow && decision.Rule is not null)
        {
            return Answer(new JsonObject { ["behavior"] = "allow", ["updatedInput"] = JsonNode.Parse(input.GetRawText()) });
        }

        var why = decision is { Behavior: PermissionBehavior.Ask, Rule: { } rule } ? $"the rule {rule.Describe()} asks first" : "Claude Code asks before this call";
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, run.Cancel, run.Run.SoftStop); // a stopping daemon leaves the task parked
        var answer = await broker.RequestAsync(run.Run.Journal, tool, input, why, run.Run.Clock, wait.Token);
        if (!answer.Allowed)
        {
            return Deny(run, callId, $"The user denied this call{(answer.Reason is null ? "." : ": " + answer.Reason)}");
        }

        if (answer.Always)
        {
            run.Policy.Approve(PermissionRule.AlwaysAllowFor(tool, input, run.Run.Worktree));
        }

        return Answer(new JsonObject { ["behavior"] = "allow", ["updatedInput"] = JsonNode.Parse(input.GetRawText()) });
    }

    private static CallToolResult Deny(Registration run, string callId, string message)
    {
        run.Stream.DeniedThroughOffload.Add(callId);
        return Answer(new JsonObject { ["behavior"] = "deny", ["message"] = message });
    }

    private static CallToolResult Answer(JsonObject decision) => new()
    {
        Content = [new TextContentBlock { Text = decision.ToJsonString() }],
    };

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            await app.StopAsync();
            await app.DisposeAsync();
            File.Delete(Socket);
        }
    }
}
