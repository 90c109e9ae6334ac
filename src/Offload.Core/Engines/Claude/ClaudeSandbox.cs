using Offload.Agent.Tools;
using Offload.Config;

namespace Offload.Engines.Claude;

/// <summary>
/// Claude Code inside bubblewrap, with the policy the builtin engine's commands get
/// (<see cref="Sandbox.Arguments"/>): the file system read-only except the task's worktree, no
/// network. What Claude Code needs on top: its own state folder (a per-task <c>CLAUDE_CONFIG_DIR</c>
/// under Offload's data, writable; the user's Claude settings read-only in it; the user's own
/// <c>~/.claude</c> and <c>~/.claude.json</c> hidden), and the model. The model is reached through
/// the daemon: the in-sandbox end of the bridge (<see cref="ClaudeForwarder"/>, a mode of
/// <c>offload-daemon</c>) listens on 127.0.0.1:<see cref="Port"/> of the sandbox's own network and
/// copies bytes to the daemon's Unix socket, bound in at <see cref="SocketInside"/>; the daemon
/// forwards to the one model endpoint and adds the credential itself
/// (<see cref="ClaudeModelProxy"/>), so no key enters the sandbox. docs/claude-engine.md.
/// </summary>
public static class ClaudeSandbox
{
    /// <summary>The bridge's port on the sandbox's own loopback (a network namespace of its own, so it never collides).</summary>
    public const int Port = 47913;

    public const string SocketInside = "/tmp/.offload/claude-bridge.sock";

    /// <summary>The value Claude Code gets for its credential variable: the bridge puts the real one on each request.</summary>
    public const string PlaceholderCredential = "offload-bridge";

    public const string ForwarderMode = "claude-bridge";

    /// <summary>What of the user's Claude Code folder a sandboxed run sees (read-only): settings and instructions, never credentials or other sessions.</summary>
    private static readonly string[] UserFiles = ["settings.json", "CLAUDE.md", "agents", "commands", "skills", "output-styles"];

    /// <summary>Variables that name credentials or where to send them: they stay outside.</summary>
    private static readonly string[] Outside =
        ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"];

    /// <summary>The per-task folder Claude Code keeps its state in (sessions, its own config) when sandboxed.</summary>
    public static string StateDir(OffloadPaths paths, long taskId) =>
        Path.Combine(paths.DataDir, "claude", taskId.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>The user's Claude Code folder, where an unsandboxed Claude Code keeps its settings and login.</summary>
    public static string? UserConfigDir(Func<string, string?> getEnv) =>
        getEnv("CLAUDE_CONFIG_DIR") is { Length: > 0 } configured ? configured
        : getEnv("HOME") is { Length: > 0 } home ? Path.Combine(home, ".claude") : null;

    /// <summary>
    /// Where the bridge sends Claude Code's requests and which credential it adds: the Simulator for
    /// <c>sim:</c> models, else <c>ANTHROPIC_BASE_URL</c> or the Anthropic API, with the daemon's
    /// <c>ANTHROPIC_API_KEY</c>, <c>ANTHROPIC_AUTH_TOKEN</c> or <c>CLAUDE_CODE_OAUTH_TOKEN</c>, or the
    /// user's Claude Code login (<c>.credentials.json</c>), in that order.
    /// </summary>
    public static ClaudeUpstream Upstream(Uri? simulator, Func<string, string?> getEnv)
    {
        if (simulator is not null)
        {
            return new ClaudeUpstream(simulator, new ClaudeCredential("ANTHROPIC_API_KEY", "offload-simulator", null));
        }

        var baseUrl = new Uri(getEnv("ANTHROPIC_BASE_URL") is { Length: > 0 } configured ? configured : "https://api.anthropic.com");
        foreach (var name in (string[])["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"])
        {
            if (getEnv(name) is { Length: > 0 } value)
            {
                return new ClaudeUpstream(baseUrl, new ClaudeCredential(name, value, null));
            }
        }

        var login = UserConfigDir(getEnv) is { } dir ? Path.Combine(dir, ".credentials.json") : null;
        return new ClaudeUpstream(baseUrl, login is not null && File.Exists(login) ? new ClaudeCredential("CLAUDE_CODE_OAUTH_TOKEN", null, login) : null);
    }

    /// <summary>
    /// The environment inside: the one Claude Code would get outside, without credentials or their
    /// destination, pointed at the bridge, with its state in <paramref name="stateDir"/>.
    /// </summary>
    public static Dictionary<string, string> Environment(
        IReadOnlyDictionary<string, string> outside, ClaudeUpstream upstream, string token, string stateDir, Func<string, string?> getEnv)
    {
        var inside = outside.Where(v => !Outside.Contains(v.Key)).ToDictionary(v => v.Key, v => v.Value, StringComparer.Ordinal);
        inside["CLAUDE_CONFIG_DIR"] = stateDir;
        inside["TMPDIR"] = "/tmp";
        inside["ANTHROPIC_BASE_URL"] = $"http://127.0.0.1:{Port}{ClaudeModelProxy.PathPrefix}{token}";
        if (upstream.Credential is { } credential)
        {
            inside[credential.Variable] = PlaceholderCredential;
        }

        if (getEnv("DOTNET_ROOT") is { Length: > 0 } dotnet)
        {
            inside["DOTNET_ROOT"] = dotnet; // the bridge is a .NET program; a framework-dependent build looks for its runtime there
        }

        return inside;
    }

    /// <summary>The URL of Offload's permission tool as Claude Code inside the sandbox reaches it.</summary>
    public static Uri McpUrl => new($"http://127.0.0.1:{Port}/mcp");

    /// <summary>
    /// The command line before Claude Code's own: <c>bwrap</c> with the task's policy (no network,
    /// whatever the config says: the model is reached through the bridge), Claude Code's state folder,
    /// the bridge socket and the programs it runs, then the in-sandbox end of the bridge.
    /// </summary>
    public static List<string> Command(SandboxPolicy policy, string? home, string stateDir, string bridgeSocket, string executable, Func<string, string?> getEnv)
    {
        var args = new List<string> { Sandbox.BwrapPath ?? "bwrap" };
        args.AddRange(Sandbox.Arguments(policy with { Network = false }, home));

        if (UserConfigDir(getEnv) is { } user && Directory.Exists(user))
        {
            // its login, its other sessions, its settings (a hook planted there would run unsandboxed next time)
            args.AddRange(["--tmpfs", user, "--remount-ro", user]);
        }

        if (home is { Length: > 0 } && File.Exists(Path.Combine(home, ".claude.json")))
        {
            args.AddRange(["--ro-bind", "/dev/null", Path.Combine(home, ".claude.json")]);
        }

        args.AddRange(["--bind", stateDir, stateDir]);
        if (UserConfigDir(getEnv) is { } source)
        {
            foreach (var name in UserFiles.Where(n => Path.Exists(Path.Combine(source, n))))
            {
                args.AddRange(["--ro-bind", Path.Combine(source, name), Path.Combine(stateDir, name)]);
            }
        }

        args.AddRange(["--bind", bridgeSocket, SocketInside]);
        foreach (var program in ProgramDirs(executable))
        {
            args.AddRange(["--ro-bind", program, program]); // should they lie under /tmp or a hidden folder
        }

        args.Add("--");
        args.AddRange(ForwarderCommand());
        args.AddRange([ForwarderMode, Port.ToString(System.Globalization.CultureInfo.InvariantCulture), SocketInside, "--"]);
        return args;
    }

    /// <summary>This daemon's own program, to run its bridge mode: its apphost, or <c>dotnet offload-daemon.dll</c>.</summary>
    internal static string[] ForwarderCommand()
    {
        var self = System.Environment.ProcessPath ?? throw new ClaudeEngineException("the daemon cannot tell where its own program is, so it cannot start the sandbox's model bridge");
        return Path.GetFileNameWithoutExtension(self) == "dotnet" ? [self, System.Environment.GetCommandLineArgs()[0]] : [self];
    }

    internal static IEnumerable<string> ProgramDirs(string executable)
    {
        var self = System.Environment.ProcessPath is { } path ? ResolvedDir(path) : null;
        var assembly = Path.GetDirectoryName(System.Environment.GetCommandLineArgs()[0]);
        return new[] { ResolvedDir(executable), self, assembly }.OfType<string>().Where(d => d.Length > 0 && Directory.Exists(d)).Distinct();
    }

    /// <summary>The folder of the file, every symbolic link on the way resolved (bwrap binds a real path only).</summary>
    private static string? ResolvedDir(string file)
    {
        var resolved = realpath(file, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            return Path.GetDirectoryName(System.Runtime.InteropServices.Marshal.PtrToStringUTF8(resolved));
        }
        finally
        {
            System.Runtime.InteropServices.Marshal.FreeHGlobal(resolved); // malloc'd by realpath; FreeHGlobal is free() on Unix
        }
    }

    // DllImport rather than LibraryImport, as in ClaudeProcess: the generated marshalling needs AllowUnsafeBlocks.
    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
#pragma warning disable SYSLIB1054, CA2101
    private static extern IntPtr realpath([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);
#pragma warning restore SYSLIB1054, CA2101
}

/// <summary>Where Claude Code's model requests go, and the credential the daemon adds to them.</summary>
/// <param name="Redact">Replaces the task's secrets in a request body before it leaves (as the builtin engine's tool results are), or null.</param>
/// <param name="Budget">How many model answers the run may still get (the codex engine's turn limit), or null for no count.</param>
public sealed record ClaudeUpstream(Uri BaseUrl, ClaudeCredential? Credential, Func<string, string>? Redact = null, ModelCallBudget? Budget = null);

/// <summary>
/// The model answers a run may still get through the bridge: each answered request (HTTP 200) counts one; once they are
/// used up, the bridge refuses the next request itself, before it reaches the model. For an agent that reports no event
/// per model answer (Codex), this is the one exact place to hold a turn limit.
/// </summary>
public sealed class ModelCallBudget(int answers)
{
    private int _answered;

    public bool Spent => Volatile.Read(ref _answered) >= answers;

    public void Answered() => Interlocked.Increment(ref _answered);
}

/// <summary>
/// A credential of Claude Code's: the variable it reads (which also says the header: <c>x-api-key</c> for
/// <c>ANTHROPIC_API_KEY</c>, else <c>Authorization: Bearer</c>), and its value, or the login file to read
/// it from at each request (Claude Code outside refreshes that login).
/// </summary>
public sealed record ClaudeCredential(string Variable, string? Value, string? LoginFile)
{
    public string Header => Variable == "ANTHROPIC_API_KEY" ? "x-api-key" : "Authorization";

    /// <summary>The header's value now; null when the login file has no token.</summary>
    public string? HeaderValue()
    {
        var secret = Value ?? ReadLogin();
        return secret is null ? null : Header == "x-api-key" ? secret : "Bearer " + secret;
    }

    private string? ReadLogin()
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(LoginFile!));
            return document.RootElement.TryGetProperty("claudeAiOauth", out var oauth) && oauth.TryGetProperty("accessToken", out var token)
                ? token.GetString()
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            return null;
        }
    }
}
