using System.Globalization;
using System.Text.Json;
using Offload.Protocol;

namespace Offload.Cli;

/// <summary>Human output on a terminal (colour unless NO_COLOR), plain text when piped, JSON when asked.</summary>
public static class Output
{
    public static readonly bool Color = !Console.IsOutputRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"))
        && Environment.GetEnvironmentVariable("TERM") != "dumb";

    public static void Json<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, CliJson.Info<T>(CliJson.Indented)));

    public static void JsonLine<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, CliJson.Info<T>()));

    public static string Paint(string text, string code) => Color ? $"\u001b[{code}m{text}\u001b[0m" : text;

    public static string Status(OffloadTaskStatus status) => Paint(status.ToWire(), StatusColor(status));

    public static string StatusColor(OffloadTaskStatus status) => status switch
    {
        OffloadTaskStatus.Succeeded => "32",
        OffloadTaskStatus.Failed => "31",
        OffloadTaskStatus.Limited or OffloadTaskStatus.NeedsInput => "33",
        OffloadTaskStatus.Running => "36",
        _ => "2",
    };

    public static string Age(DateTimeOffset at, DateTimeOffset now)
    {
        var span = now - at;
        return span.TotalSeconds < 60 ? $"{Math.Max(0, (int)span.TotalSeconds)}s"
            : span.TotalMinutes < 60 ? $"{(int)span.TotalMinutes}m"
            : span.TotalHours < 48 ? $"{(int)span.TotalHours}h"
            : $"{(int)span.TotalDays}d";
    }

    public static string Duration(TimeSpan span) =>
        span.TotalSeconds < 60 ? span.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s"
        : span.TotalMinutes < 60 ? $"{(int)span.TotalMinutes}m{span.Seconds:00}s"
        : $"{(int)span.TotalHours}h{span.Minutes:00}m";

    public static string Tokens(long n) => n < 1000 ? n.ToString(CultureInfo.InvariantCulture)
        : n < 1_000_000 ? (n / 1000.0).ToString("0.#", CultureInfo.InvariantCulture) + "k"
        : (n / 1_000_000.0).ToString("0.##", CultureInfo.InvariantCulture) + "M";

    public static string Cost(decimal usd) => "$" + usd.ToString("0.00##", CultureInfo.InvariantCulture);

    public static string OneLine(string text, int max)
    {
        var line = text.ReplaceLineEndings(" ").Trim();
        return line.Length <= max ? line : line[..(max - 1)] + "…";
    }

    /// <summary>
    /// One journal event as a log line (an assistant turn's thinking adds a line before its text: collapsed to its
    /// first line and size, or whole with <paramref name="thinking"/>); null for events not worth a line.
    /// <paramref name="subagent"/> names the subagent that wrote the event (<see cref="SubagentLabels"/>): each of its
    /// lines starts with it in brackets, after the time.
    /// </summary>
    public static string? LogLine(AgentEvent e, bool thinking = false, string? subagent = null)
    {
        var time = e.At.ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture);
        var lead = Paint(time, "2") + " " + (subagent is null ? "" : Paint($"[{subagent}]", "34") + " ");
        var text = e switch
        {
            TaskCreated c => $"created · {c.Engine} · {c.Model} · branch {c.Branch}",
            StatusChanged s when s.To.IsFinal() || s.To == OffloadTaskStatus.NeedsInput =>
                $"{Paint("■", "1")} {Paint($"task {e.TaskId}", "1")} {Status(s.To)}{(s.Reason is null ? "" : " · " + s.Reason)} · next: {NextSteps(e.TaskId, s.To)}",
            StatusChanged s => $"{Paint("●", "2")} {Status(s.To)}{(s.Reason is null ? "" : " · " + s.Reason)}",
            UserMessage { Source: Agent.Conversation.OutputLimitSource } => Paint("↻ the reply was cut off by the output-token limit; the model was asked to continue", "33"),
            UserMessage u => $"{Paint("user:", "1")} {u.Text}",
            AssistantMessage { Thinking.Count: > 0 } a => string.Join("\n" + lead,
                [.. a.Thinking.Select(b => Thought(b, thinking)), .. a.Text.Length > 0 ? [$"{Paint("assistant:", "1")} {a.Text}"] : Array.Empty<string>()]),
            AssistantMessage a when a.Text.Length > 0 => $"{Paint("assistant:", "1")} {a.Text}",
            ToolCalled t => $"{Paint("→ " + t.Name, "35")} {OneLine(Describe(t), 160)}",
            ToolResulted r => $"{Paint("← " + r.Name, r.IsError ? "31" : "2")} {ResultLine(r)}",
            ModelRetried m => Paint($"model call failed ({m.Reason}); retry {m.Try} in {m.DelayMs} ms", "33"),
            PermissionRequested p => Paint($"needs approval: {p.Tool} {OneLine(p.Input.GetRawText(), 120)} (offload approve {e.TaskId} / offload deny {e.TaskId})", "33"),
            PermissionAnswered p => $"permission {(p.Allowed ? "approved" : "denied")}{(p.Reason is null ? "" : ": " + p.Reason)}",
            ContextCompacted c => Paint(Compacted(c), "36"),
            PlanItemChanged p => $"{Paint("plan", "36")} {PlanMark(p.Item.Status)} #{p.Item.Id} {OneLine(p.Item.Subject, 100)} · {p.Item.Status} ({p.Done}/{p.Total})",
            PlanProposed p => Paint($"plan proposed ({p.Plan.Split('\n').Length} lines; offload show {e.TaskId} shows it): offload approve {e.TaskId} / offload reply {e.TaskId} \"…\"", "33"),
            PlanApproved => Paint("plan approved: plan mode is over", "32"),
            CheckpointSaved c => Paint($"checkpoint turn {c.Turn} · {c.FilesChanged} files", "2"),
            WorktreeRestored w => Paint(Restored(w.BranchCommit, w.Turn, w.Checkpoint), "33"),
            EngineNote { Kind: Engines.Claude.ClaudeEngine.LimitNote or Engines.Codex.CodexEngine.LimitNote } n => Paint($"limit reached: {n.Text}", "31"),
            SetupRan r => Paint($"setup `{OneLine(r.Command, 100)}` " + (r.Passed ? "passed" : r.ExitCode is { } code ? $"failed (exit {code})" : "did not finish")
                + $" in {Duration(TimeSpan.FromMilliseconds(r.DurationMs))}" + (r.KeptOut is { Count: > 0 } kept ? $" · never committed: {OneLine(string.Join(", ", kept), 120)}" : "")
                + (r.Passed || r.OutputTail.Length == 0 ? "" : "\n" + r.OutputTail.TrimEnd()), r.Passed ? "2" : "31"),
            CheckRan c => Paint($"check `{OneLine(c.Command, 100)}` " + (c.Passed ? "passed" : c.ExitCode is { } exit ? $"failed (exit {exit})" : "did not finish")
                + $" (try {c.Try}) in {Duration(TimeSpan.FromMilliseconds(c.DurationMs))}", c.Passed ? "32" : "31"),
            ErrorRaised err => Paint($"error: {err.Message}{(err.Detail is null ? "" : " · " + err.Detail)}", "31"),
            TaskFinished f => $"{Paint("finished", "1")} {Status(f.Status)}{(f.Reason is null ? "" : " · " + f.Reason)}{(f.Commit is null ? "" : " · commit " + f.Commit[..Math.Min(10, f.Commit.Length)])}",
            _ => null,
        };
        return text is null ? null : lead + text;
    }

    /// <summary>
    /// What <c>logs</c> calls each subagent, by the id of the Agent call that started it (<see cref="AgentEvent.Subagent"/>):
    /// its type and description, learnt from that call as the events go by; a subagent whose call came before the events
    /// shown (<c>--after</c>) is called by its call id.
    /// </summary>
    public sealed class SubagentLabels
    {
        private readonly Dictionary<string, string> _labels = new(StringComparer.Ordinal);

        /// <summary>The label of the subagent that wrote <paramref name="e"/>, or null for the task's own agent.</summary>
        public string? Of(AgentEvent e)
        {
            if (e is ToolCalled { Subagent: null, Name: Agent.Subagents.AgentTool.ToolName } call)
            {
                string? Field(string name) =>
                    call.Input.ValueKind == JsonValueKind.Object && call.Input.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s ? s : null;
                _labels[call.CallId] = $"{Field("subagent_type") ?? Agent.Subagents.AgentTypes.GeneralPurpose}: {OneLine(Field("description") ?? "", 40)}";
            }

            return e.Subagent is not { } id ? null : _labels.TryGetValue(id, out var label) ? label : "subagent " + id;
        }
    }

    /// <summary>The mark of a plan item's status: done, doing, to do, deleted.</summary>
    public static string PlanMark(string status) => status switch
    {
        "completed" => Paint("✓", "32"),
        "in_progress" => Paint("▶", "33"),
        "deleted" => Paint("✗", "2"),
        _ => "○",
    };

    /// <summary>A thinking block: whole, or its first line and its size (<c>logs --thinking</c> shows it whole).</summary>
    private static string Thought(ThinkingBlock block, bool whole)
    {
        var label = Paint("thinking:", "2;3");
        if (block.IsRedacted)
        {
            return $"{label} {Paint("(redacted by the provider)", "2")}";
        }

        if (whole)
        {
            return $"{label} {block.Text}";
        }

        var first = block.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "";
        return $"{label} {Paint($"{OneLine(first, 100)} ({block.Text.Length.ToString(CultureInfo.InvariantCulture)} chars; --thinking shows it)", "2")}";
    }

    /// <summary>A compaction as <c>logs</c> shows it: what it took out, the tokens before and after, and the summary whole.</summary>
    private static string Compacted(ContextCompacted c)
    {
        var what = string.Join(" and ", new[]
        {
            c.Cleared.Count > 0 ? $"cleared {c.Cleared.Count} old tool output{(c.Cleared.Count == 1 ? "" : "s")}" : null,
            c.Summary is not null ? "summarised the conversation before the last turns" : null,
        }.OfType<string>());
        var line = $"context compacted ({c.Reason}): {what}; {Tokens(c.TokensBefore)} → {Tokens(c.TokensAfter)} of {Tokens(c.Window)} tokens";
        return c.Summary is null ? line : line + "\n  summary: " + c.Summary.ReplaceLineEndings("\n  ");
    }

    /// <summary>How a worktree found gone was made again, for <c>logs</c> and <c>show</c>.</summary>
    public static string Restored(string branchCommit, int? turn, string? checkpoint) =>
        $"worktree was gone; made again from its branch at {branchCommit[..Math.Min(10, branchCommit.Length)]}"
        + (checkpoint is null
            ? " (no checkpoint newer than that: changes not yet checkpointed were lost with the folder)"
            : $" and the checkpoint of turn {turn} ({checkpoint[..Math.Min(10, checkpoint.Length)]}), uncommitted as before");

    private static string NextSteps(long id, OffloadTaskStatus status) => status switch
    {
        OffloadTaskStatus.Succeeded => $"offload show {id} · offload diff {id} · offload merge {id}",
        OffloadTaskStatus.NeedsInput => $"offload approve {id} / offload deny {id}",
        _ => $"offload show {id} · offload reply {id} \"…\" · offload retry {id}",
    };

    private static string Describe(ToolCalled t)
    {
        foreach (var key in new[] { "command", "file_path", "pattern" })
        {
            if (t.Input.ValueKind == JsonValueKind.Object && t.Input.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.String)
            {
                return value.GetString()!;
            }
        }

        return t.Input.GetRawText();
    }

    private static string ResultLine(ToolResulted r)
    {
        var lines = r.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var head = lines.Length == 0 ? "(no output)" : OneLine(lines[0], 120);
        var exit = r.ExitCode is { } code ? $"exit {code} · " : "";
        var more = lines.Length > 1 ? $" (+{lines.Length - 1} lines)" : "";
        return $"{exit}{head}{more}{(r.Truncated ? " [cut; full output: " + r.FullOutputPath + "]" : "")}";
    }
}
