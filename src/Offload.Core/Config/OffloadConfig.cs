using System.Text.Json;
using Offload.Models;
using Offload.Protocol;

namespace Offload.Config;

/// <summary>
/// Offload's settings: <c>$XDG_CONFIG_HOME/offload/config.json</c>, then a repository's
/// <c>.offload/config.json</c> on top (per repository values win where given).
/// </summary>
public sealed record OffloadConfig
{
    /// <summary>How many tasks run at once; the rest wait in order.</summary>
    public int MaxParallel { get; set; } = 4;

    public string DefaultEngine { get; set; } = "builtin";

    public LimitSettings Limits { get; set; } = new();

    public ModelSettings Models { get; set; } = new();

    public NotificationSettings Notifications { get; set; } = new();

    /// <summary>Settings of the engines other than builtin; read from the user's config only, never a repository's.</summary>
    public EngineSettings Engines { get; set; } = new();

    /// <summary>Permission rules in Claude Code's syntax (<c>"permissions": {"allow": ["Bash(npm test:*)"]}</c>); docs/permissions.md.</summary>
    public Agent.Permissions.PermissionLists Permissions { get; set; } = new();

    /// <summary>How the builtin agent's shell commands are confined (docs/sandbox.md); only the user's config sets it.</summary>
    public Agent.Tools.SandboxSettings Sandbox { get; set; } = new();

    /// <summary>
    /// The command that defines done for every task of the repository (<c>run --check</c> overrides it): run in the
    /// sandbox after the agent's final answer; a failure goes back to the agent (docs/runs.md).
    /// </summary>
    public string? Check { get; set; }

    /// <summary>How many times the check runs before the task ends failed (null: <see cref="DefaultCheckTries"/>).</summary>
    public int? CheckTries { get; set; }

    public const int DefaultCheckTries = 3;

    /// <summary>
    /// Commands run in a new task's worktree, in the sandbox, before the agent starts (<c>["npm ci"]</c>): their output is in
    /// the log, a failure ends the task failed, and nothing they create is committed (docs/config.md).
    /// </summary>
    public List<string> Setup { get; set; } = [];

    /// <summary>Whether <see cref="Setup"/>'s commands may use the network (the agent's commands still may not).</summary>
    public bool SetupNetwork { get; set; }

    /// <summary>Traces and metrics over OTLP (docs/telemetry.md); only the user's config sets it.</summary>
    public Telemetry.TelemetrySettings Telemetry { get; set; } = new();

    /// <summary>The web dashboard's loopback listener (docs/ui.md); only the user's config sets it.</summary>
    public UiSettings Ui { get; set; } = new();

    /// <summary>The file's settings, or the defaults when there is no file (or only whitespace in it).</summary>
    /// <exception cref="ConfigException">The file cannot be read, does not parse, or sets a limit out of range.</exception>
    public static OffloadConfig Load(string path)
    {
        if (!File.Exists(path))
        {
            return new OffloadConfig();
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(path, null, null, $"it cannot be read: {e.Message}", e);
        }

        return Parse(text, path);
    }

    /// <summary>The settings in <paramref name="text"/>, the content of the file at <paramref name="path"/>.</summary>
    /// <exception cref="ConfigException">It does not parse, or sets a limit out of range.</exception>
    public static OffloadConfig Parse(string text, string path)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return new OffloadConfig();
        }

        OffloadConfig config;
        try
        {
            config = JsonSerializer.Deserialize(text, OffloadJson.Info<OffloadConfig>(ConfigJson)) ?? new OffloadConfig();
        }
        catch (JsonException e)
        {
            throw ConfigException.FromJson(path, e);
        }

        if (config.OutOfRange() is { } problem)
        {
            throw new ConfigException(path, null, null, problem);
        }

        return config;
    }

    /// <summary>The first setting whose value cannot work (a limit of 0 or below stops every task at once), or null.</summary>
    private string? OutOfRange()
    {
        (string Name, object? Value)[] sections =
            [("limits", Limits), ("models", Models), ("notifications", Notifications), ("engines", Engines), ("permissions", Permissions), ("sandbox", Sandbox), ("telemetry", Telemetry), ("ui", Ui)];
        if (sections.FirstOrDefault(s => s.Value is null) is { Name: { } empty })
        {
            return $"{empty} is null; it should be an object ({{…}}) or be left out";
        }

        (string Name, decimal? Value)[] positive =
        [
            ("maxParallel", MaxParallel),
            ("limits.maxTurns", Limits.MaxTurns),
            ("limits.maxCostUsd", Limits.MaxCostUsd),
            ("limits.timeoutSeconds", Limits.TimeoutSeconds),
            ("limits.repeatLimit", Limits.RepeatLimit),
            ("limits.bashTimeoutSeconds", Limits.BashTimeoutSeconds),
            ("limits.maxToolOutputChars", Limits.MaxToolOutputChars),
            ("limits.maxSubagents", Limits.MaxSubagents),
            ("checkTries", CheckTries),
        ];
        if (positive.FirstOrDefault(s => s.Value <= 0) is { Name: not null } bad)
        {
            return $"{bad.Name} must be above 0 (it is {bad.Value})";
        }

        if (Models.ContextWindow is null)
        {
            return "models.contextWindow is null; it should be an object of model names and token counts ({\"vllm:my-model\": 32768}) or be left out";
        }

        if (Models.ContextWindow.FirstOrDefault(w => w.Value < MinContextWindow) is { Key: not null } small)
        {
            return $"models.contextWindow[\"{small.Key}\"] is {small.Value}; a context window is a number of tokens, at least {MinContextWindow} (e.g. 32768)";
        }

        if (Models.CompactAt is not (> 0.05 and < 1))
        {
            return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"models.compactAt is {Models.CompactAt}; it is the share of the context window at which the agent compacts, above 0.05 and below 1 (e.g. 0.8)");
        }

        if (Setup is null || Setup.Any(string.IsNullOrWhiteSpace))
        {
            return "setup is a list of shell commands ([\"npm ci\"]), none of them empty";
        }

        if (Ui.Port is < 0 or > 65535)
        {
            return $"ui.port is {Ui.Port}; it is a TCP port from 1 to 65535, or 0 for a free one chosen at random";
        }

        return Telemetry.Problem() ?? Thinking.Problem(Models);
    }

    /// <summary>The smallest context window the config accepts: less cannot hold the agent's system prompt and tools.</summary>
    public const int MinContextWindow = 2048;

    /// <summary>The user's config with a repository's <c>.offload/config.json</c> laid over it.</summary>
    public OffloadConfig WithRepository(string repoRoot)
    {
        var path = Path.Combine(repoRoot, ".offload", "config.json");
        if (!File.Exists(path))
        {
            return this;
        }

        var repo = Load(path);
        return this with
        {
            Limits = Limits.Overlay(repo.Limits),
            Permissions = Permissions.Concat(repo.Permissions),
            Check = repo.Check ?? Check,
            CheckTries = repo.CheckTries ?? CheckTries,
            Setup = repo.Setup.Count > 0 ? repo.Setup : Setup,
            SetupNetwork = repo.Setup.Count > 0 ? repo.SetupNetwork : SetupNetwork,
        };
    }

    internal static readonly JsonSerializerOptions ConfigJson = new(OffloadJson.Options)
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };
}

/// <summary>Budgets for one task; <c>run</c> flags override them.</summary>
public sealed record LimitSettings
{
    public int? MaxTurns { get; set; } = 200;
    public decimal? MaxCostUsd { get; init; }
    public int? TimeoutSeconds { get; set; } = 4 * 60 * 60;
    /// <summary>The same tool call with the same input this many times in a row stops the task.</summary>
    public int RepeatLimit { get; set; } = 5;
    public int BashTimeoutSeconds { get; set; } = 120;
    public int MaxToolOutputChars { get; set; } = 30_000;
    /// <summary>How many subagents (<c>Agent</c> calls of one turn) of a task run at once; the others wait for a place.</summary>
    public int MaxSubagents { get; set; } = 4;

    /// <summary>
    /// Daemon starts in a row that find the task running without progress (no model answer or tool result stored since
    /// the last) before it ends failed: a task whose pickup takes the daemon down is not run forever. The user's config only.
    /// </summary>
    public int MaxRestarts { get; set; } = 3;

    public LimitSettings Overlay(LimitSettings other) => new()
    {
        MaxTurns = other.MaxTurns ?? MaxTurns,
        MaxCostUsd = other.MaxCostUsd ?? MaxCostUsd,
        TimeoutSeconds = other.TimeoutSeconds ?? TimeoutSeconds,
        RepeatLimit = other.RepeatLimit,
        BashTimeoutSeconds = other.BashTimeoutSeconds,
        MaxToolOutputChars = other.MaxToolOutputChars,
        MaxSubagents = other.MaxSubagents,
        MaxRestarts = MaxRestarts,
    };
}

public sealed record EngineSettings
{
    public ClaudeEngineSettings Claude { get; set; } = new();

    public CodexEngineSettings Codex { get; set; } = new();
}

/// <summary>The <c>codex</c> engine: the real Codex CLI. docs/codex-engine.md.</summary>
public sealed record CodexEngineSettings
{
    /// <summary>The <c>codex</c> executable; default: <c>codex</c> on PATH.</summary>
    public string? Path { get; init; }

    /// <summary>Extra arguments added to every <c>codex exec</c> run, e.g. <c>["-c", "model_reasoning_effort=\"high\""]</c>.</summary>
    public List<string> Args { get; set; } = [];

    /// <summary>Names of further environment variables to pass to Codex.</summary>
    public List<string> Env { get; set; } = [];
}

/// <summary>The <c>claude</c> engine: the real Claude Code CLI. docs/claude-engine.md.</summary>
public sealed record ClaudeEngineSettings
{
    /// <summary>The <c>claude</c> executable; default: <c>claude</c> on PATH.</summary>
    public string? Path { get; init; }

    /// <summary>Extra arguments added to every <c>claude -p</c> run, e.g. <c>["--effort", "high"]</c>.</summary>
    public List<string> Args { get; set; } = [];

    /// <summary>Claude Code's <c>--permission-mode</c>: edits in the task's own worktree are accepted; commands not allowed by a rule ask.</summary>
    public string PermissionMode { get; set; } = "acceptEdits";

    /// <summary>Names of further environment variables to pass to Claude Code (e.g. cloud provider settings).</summary>
    public List<string> Env { get; set; } = [];
}

/// <summary>
/// The web dashboard (<c>offload ui</c>, docs/ui.md): a listener on 127.0.0.1 that stays closed until <c>offload ui</c>
/// asks for it, or from the daemon's start when <see cref="Enabled"/>.
/// </summary>
public sealed record UiSettings
{
    public bool Enabled { get; set; }

    /// <summary>The loopback port; 0: a free one, chosen when the listener opens.</summary>
    public int Port { get; set; }
}

/// <summary>
/// How the daemon tells the user a task succeeded, failed, was limited or needs input: a desktop
/// notification (where <c>notify-send</c> exists) and, when <see cref="WebhookUrl"/> is set, a JSON POST
/// (Slack-compatible: it has a <c>text</c> field).
/// </summary>
public sealed record NotificationSettings
{
    public bool Desktop { get; set; } = true;

    public string? WebhookUrl { get; init; }

    /// <summary>The <c>link</c> of a notification, <c>{id}</c> replaced by the task's number; default <c>offload://tasks/{id}</c>.</summary>
    public string? LinkTemplate { get; init; }
}
