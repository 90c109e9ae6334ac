using System.Globalization;
using System.Text;
using Offload.Agent.Tools;
using Offload.Config;
using Offload.Engines.Claude;

namespace Offload.Engines.Codex;

/// <summary>
/// Codex inside bubblewrap, with the policy the builtin engine's commands get (<see cref="Sandbox.Arguments"/>, no
/// network), as the claude engine runs Claude Code (<see cref="ClaudeSandbox"/>): its own state folder (a per-task
/// <c>CODEX_HOME</c> under Offload's data, writable, where its sessions live), the user's <c>~/.codex</c> hidden, and the
/// model only through the daemon's bridge (<see cref="ClaudeForwarder"/> inside, <see cref="ClaudeModelProxy"/> outside,
/// which adds the credential). Codex's own sandbox cannot nest in this one (its bubblewrap needs a user namespace, which
/// the policy's <c>--disable-userns</c> refuses), so inside it runs with <c>-s danger-full-access</c> and this sandbox is
/// the one that holds. docs/codex-engine.md.
/// </summary>
public static class CodexSandbox
{
    /// <summary>The provider Offload writes into Codex's config (<c>model_provider</c>).</summary>
    public const string Provider = "offload";

    /// <summary>The variable Codex reads the provider's key from (<c>env_key</c>).</summary>
    public const string KeyVariable = "OFFLOAD_CODEX_API_KEY";

    /// <summary>The per-task folder Codex keeps its state in (<c>CODEX_HOME</c>: sessions, the config Offload writes).</summary>
    public static string StateDir(OffloadPaths paths, long taskId) =>
        Path.Combine(paths.DataDir, "codex", taskId.ToString(CultureInfo.InvariantCulture));

    /// <summary>The user's own Codex folder.</summary>
    public static string? UserHome(Func<string, string?> getEnv) =>
        getEnv("CODEX_HOME") is { Length: > 0 } configured ? configured
        : getEnv("HOME") is { Length: > 0 } home ? Path.Combine(home, ".codex") : null;

    /// <summary>
    /// Where the model requests go: the Simulator's <c>/v1</c> for <c>sim:</c> models, else <c>OPENAI_BASE_URL</c> or
    /// the OpenAI API, with the daemon's <c>OPENAI_API_KEY</c> as a bearer token.
    /// </summary>
    public static ClaudeUpstream Upstream(Uri? simulator, Func<string, string?> getEnv)
    {
        if (simulator is not null)
        {
            return new ClaudeUpstream(new Uri(simulator.ToString().TrimEnd('/') + "/v1"), new ClaudeCredential("OPENAI_API_KEY", "offload-simulator", null));
        }

        var baseUrl = new Uri(getEnv("OPENAI_BASE_URL") is { Length: > 0 } configured ? configured.TrimEnd('/') : "https://api.openai.com/v1");
        return new ClaudeUpstream(baseUrl, getEnv("OPENAI_API_KEY") is { Length: > 0 } key ? new ClaudeCredential("OPENAI_API_KEY", key, null) : null);
    }

    /// <summary>
    /// The <c>config.toml</c> Offload writes into the task's <c>CODEX_HOME</c> for each run (mode 0600: the bridge's token
    /// is in the URL): one provider, Offload's, speaking the Responses API at <paramref name="baseUrl"/>.
    /// </summary>
    public static string Config(Uri baseUrl)
    {
        var config = new StringBuilder();
        config.AppendLine(CultureInfo.InvariantCulture, $"model_provider = \"{Provider}\"");
        config.AppendLine("check_for_update_on_startup = false");
        config.AppendLine();
        config.AppendLine(CultureInfo.InvariantCulture, $"[model_providers.{Provider}]");
        config.AppendLine("name = \"Offload\"");
        config.AppendLine(CultureInfo.InvariantCulture, $"base_url = \"{baseUrl.ToString().TrimEnd('/')}\"");
        config.AppendLine("wire_api = \"responses\"");
        config.AppendLine(CultureInfo.InvariantCulture, $"env_key = \"{KeyVariable}\"");
        return config.ToString();
    }

    /// <summary>
    /// The command line before Codex's own: <c>bwrap</c> with the task's policy (no network), the user's Codex folder
    /// hidden, Codex's state folder, the bridge socket and the programs it runs, then the in-sandbox end of the bridge.
    /// </summary>
    public static List<string> Command(SandboxPolicy policy, string? home, string stateDir, string bridgeSocket, string executable, Func<string, string?> getEnv)
    {
        var args = new List<string> { Sandbox.BwrapPath ?? "bwrap" };
        args.AddRange(Sandbox.Arguments(policy with { Network = false }, home));
        if (UserHome(getEnv) is { } user && Directory.Exists(user))
        {
            // its login (auth.json), its other sessions, its config (a hook or MCP server planted there would run unsandboxed next time)
            args.AddRange(["--tmpfs", user, "--remount-ro", user]);
        }

        args.AddRange(["--bind", stateDir, stateDir, "--bind", bridgeSocket, ClaudeSandbox.SocketInside]);
        foreach (var program in ClaudeSandbox.ProgramDirs(executable))
        {
            args.AddRange(["--ro-bind", program, program]);
        }

        args.Add("--");
        args.AddRange(ClaudeSandbox.ForwarderCommand());
        args.AddRange([ClaudeSandbox.ForwarderMode, ClaudeSandbox.Port.ToString(CultureInfo.InvariantCulture), ClaudeSandbox.SocketInside, "--"]);
        return args;
    }

    /// <summary>
    /// The native program behind npm's <c>codex</c> (a Node script that starts it as a child on Node before 23): run
    /// directly, it is the one process Offload stops and the parent of the commands it runs. Other files are run as they are.
    /// </summary>
    public static string Native(string executable)
    {
        var script = new FileInfo(executable).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? executable;
        if (!script.EndsWith(".js", StringComparison.Ordinal))
        {
            return executable;
        }

        var scope = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(script))); // …/node_modules/@openai
        var triple = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64
            ? ("linux-arm64", "aarch64-unknown-linux-musl")
            : ("linux-x64", "x86_64-unknown-linux-musl");
        var native = scope is null ? null : Path.Combine(scope, "codex-" + triple.Item1, "vendor", triple.Item2, "bin", "codex");
        return native is not null && File.Exists(native) ? native : executable;
    }
}
