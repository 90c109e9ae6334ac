using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;
using Offload.Engines;
using Offload.Models;
using Offload.Protocol;

namespace Offload.Agent;

/// <summary>
/// Keeps the builtin agent's conversation inside the model's context window.
/// Before each model call the request's size is estimated: the input tokens the provider reported for the last call,
/// plus a token per 4 characters added since (JSON escapes counted, as they are sent). When that passes
/// <c>models.compactAt</c> of the window (<see cref="ModelGateway.ContextWindow"/>), the conversation is compacted:
/// first the outputs of tool calls older than the last <see cref="KeepTurns"/> turns are cleared (a note names the file
/// that keeps each whole); if that does not bring it under half the window, the model writes a summary of everything
/// before the last few turns, which replaces it. A provider's "prompt is too long" answer compacts too, harder each
/// time, and the call is made again.
/// A compaction is one <see cref="ContextCompacted"/> event, written once the summary is in hand: a crash before it leaves
/// the journal as it was (the next run compacts again), after it the conversation is rebuilt from it (<see cref="View"/>).
/// </summary>
public sealed partial class Compaction
{
    /// <summary>Turns kept whole (tool outputs and all) when older ones are cleared or summarised.</summary>
    public const int KeepTurns = 3;

    /// <summary>What a compaction aims for: at most this share of the window.</summary>
    public const double Target = 0.5;

    /// <summary>How often one model call may meet "prompt is too long" and compact before the task fails.</summary>
    public const int MaxOverflows = 3;

    /// <summary>The opening of the summary request: Claude Code's own words, so the Simulator answers both alike.</summary>
    public const string SummaryPrompt = """
        Your task is to create a detailed summary of the conversation so far, paying close attention to the user's explicit requests and your previous actions.
        The summary replaces the conversation: you will go on with the task from it, with only the last few turns kept after it, so it must hold everything needed to continue.

        Do not call any tools. Answer with text only, in these sections:
        1. Goal: the user's requests and intent, in their own words where it matters (constraints, things not to do).
        2. Decisions: what was decided and why, and approaches that were tried and dropped.
        3. Files touched: each file read, created or changed, and what changed in it.
        4. Done: what is finished, with the results of builds and tests.
        5. Remaining: what is not done yet, and errors still open.
        6. Plan: the next steps in order, starting with the one you were about to take.
        """;

    /// <summary>What the conversation starts with after a summary (Claude Code's opening words).</summary>
    public const string SummaryPreamble =
        "This session is being continued from a previous conversation that ran out of context. The summary below covers the earlier portion of the conversation.";

    private const int CharsPerToken = 4;
    private const int FramingChars = 64; // the JSON around one message or block
    private const int ClearAbove = 400; // shorter outputs are not worth a note
    private const int PromptKeptUpTo = 2_000; // a longer first prompt is left to the summary

    private readonly EngineRun _run;
    private readonly ModelGateway _models;
    private readonly IChatClient _client;
    private readonly ChatOptions _options;
    private readonly double _compactAt;
    private readonly long _overheadChars;
    private int _window;
    private double _scale = 1; // the provider's tokens per our estimated token, once it has said
    private long _base; // tokens of the conversation up to _counted messages
    private int _counted;

    /// <param name="history">The journal the <paramref name="messages"/> were rebuilt from.</param>
    public Compaction(EngineRun run, ModelGateway models, IChatClient client, ChatOptions options, IReadOnlyList<AgentEvent> history, List<ChatMessage> messages)
    {
        _run = run;
        _models = models;
        _client = client;
        _options = options;
        _compactAt = models.Settings.CompactAt;
        _window = models.ContextWindow(run.Task.Model);
        _overheadChars = Chars(options.Instructions) + FramingChars * 4
            + (options.Tools ?? []).OfType<AIFunctionDeclaration>().Sum(t => t.Name.Length + Chars(t.Description) + t.JsonSchema.GetRawText().Length + FramingChars);

        // The last reported size and what came after it, as the journal has them; or, before any call, an estimate of all.
        var current = Conversation.Current(history);
        long chars = 0;
        for (var i = current.Count - 1; i >= 0; i--)
        {
            switch (current[i])
            {
                case UsageRecorded { InputTokens: var input, CacheReadTokens: var read, CacheWriteTokens: var write } when input + read + write > 0:
                    _base = input + read + write + Tokens(chars);
                    _counted = messages.Count;
                    return;
                case ContextCompacted compacted:
                    _base = compacted.TokensAfter + Tokens(chars);
                    _counted = messages.Count;
                    return;
                case var e:
                    chars += Chars(e);
                    break;
            }
        }

        _base = Tokens(_overheadChars);
        _counted = 0;
    }

    /// <summary>The model calls' cost of the summaries written in this run, in USD (each is on record as a <see cref="UsageRecorded"/>).</summary>
    public decimal CostUsd { get; private set; }

    /// <summary>
    /// The model's answer to <paramref name="messages"/>, compacting them first when the request would pass the
    /// threshold, and again (harder) when the provider says the prompt is too long. The list is replaced in place.
    /// </summary>
    /// <param name="turn">The task's turns so far, for the record.</param>
    public async Task<ChatResponse> CallAsync(List<ChatMessage> messages, int turn, CancellationToken cancellationToken)
    {
        var estimate = Estimate(messages);
        if (estimate > _window * _compactAt)
        {
            await CompactAsync(messages, turn, "threshold", estimate, KeepTurns, cancellationToken);
        }

        for (var overflows = 0; ; overflows++)
        {
            try
            {
                var response = await _client.GetResponseAsync(messages, _options, cancellationToken);
                var usage = ModelUsage.From(response.Usage);
                var reported = usage.Input + usage.CacheRead + usage.CacheWrite;
                _base = reported > 0 ? reported : Estimate(messages);
                _counted = messages.Count;
                return response;
            }
            catch (ModelCallException e) when (Overflow(e) is { } overflow)
            {
                estimate = Estimate(messages);
                if (overflow.Window is { } window && window < _window)
                {
                    _window = window;
                }

                if (overflow.Tokens is { } tokens && tokens > estimate)
                {
                    _scale = Math.Min(4, _scale * tokens / Math.Max(1, estimate));
                }

                if (overflows >= MaxOverflows
                    || !await CompactAsync(messages, turn, "prompt too long", overflow.Tokens ?? estimate, overflows == 0 ? KeepTurns : 0, cancellationToken))
                {
                    throw new ModelCallException(e.Provider, e.StatusCode, e.ProviderMessage,
                        $"the conversation could not be made to fit the model's context window of {_window} tokens even after compacting it; " +
                        "if the window is larger than the provider says, or smaller than Offload assumes, set models.contextWindow for this model (docs/models.md)", e);
                }
            }
        }
    }

    /// <summary>
    /// The events the model sees: after a summary, the summary (as a user message) and the events from
    /// <see cref="ContextCompacted.KeptFromSeq"/> on; every cleared output replaced by its note. No compaction: the events as they are.
    /// </summary>
    public static IReadOnlyList<AgentEvent> View(IReadOnlyList<AgentEvent> current)
    {
        if (!current.Any(e => e is ContextCompacted))
        {
            return current;
        }

        var cleared = new Dictionary<string, string>(StringComparer.Ordinal);
        ContextCompacted? summarised = null;
        foreach (var compacted in current.OfType<ContextCompacted>())
        {
            foreach (var c in compacted.Cleared)
            {
                cleared[c.CallId] = c.Path;
            }

            summarised = compacted.Summary is null ? summarised : compacted;
        }

        var view = new List<AgentEvent>(current.Count);
        var kept = new HashSet<string>(StringComparer.Ordinal);
        if (summarised is not null)
        {
            var prompt = current.OfType<TaskCreated>().FirstOrDefault()?.Prompt;
            view.Add(new UserMessage(SummaryMessage(summarised.Summary!, prompt), "compaction"));
        }

        foreach (var e in current)
        {
            if (e is ContextCompacted || (summarised is not null && e.Seq < summarised.KeptFromSeq))
            {
                continue;
            }

            switch (e)
            {
                case ToolCalled call:
                    kept.Add(call.CallId);
                    view.Add(e);
                    break;
                case ToolResulted result when summarised is not null && !kept.Contains(result.CallId):
                    break; // its call was summarised
                case ToolResulted result when cleared.TryGetValue(result.CallId, out var path):
                    view.Add(result with { Output = ClearedNote(result.Output.Length, path) });
                    break;
                default:
                    view.Add(e);
                    break;
            }
        }

        return view;
    }

    /// <summary>
    /// Makes the conversation smaller and records how, in one event; replaces <paramref name="messages"/> with the
    /// conversation rebuilt from the journal. False when nothing could be taken out.
    /// </summary>
    private async Task<bool> CompactAsync(List<ChatMessage> messages, int turn, string reason, long tokensBefore, int keepTurns, CancellationToken cancellationToken)
    {
        var history = await _run.Journal.ReadAllAsync(cancellationToken);
        var current = Conversation.Current(history);
        var view = View(current);
        var turns = view.OfType<AssistantMessage>().ToList();
        var recent = turns.Count > keepTurns ? turns[^Math.Max(keepTurns, 1)].Seq : 0;

        // 1. Clear the outputs of older turns.
        var done = current.OfType<ContextCompacted>().SelectMany(c => c.Cleared).Select(c => c.CallId).ToHashSet(StringComparer.Ordinal);
        List<ClearedOutput> cleared = [];
        foreach (var result in view.OfType<ToolResulted>().Where(r => (keepTurns == 0 || r.Seq < recent) && r.Output.Length > ClearAbove && !done.Contains(r.CallId)))
        {
            cleared.Add(new ClearedOutput(result.CallId, await KeepAsync(result, cancellationToken)));
        }

        var candidate = new ContextCompacted(turn, reason, _window, tokensBefore, 0, cleared);
        var afterClearing = View([.. current, candidate]);
        var tokensAfter = Tokens(_overheadChars + afterClearing.Sum(Chars));
        UsageRecorded? usage = null;
        if (tokensAfter > _window * Target)
        {
            // 2. Summarise all but the last turns (fewer kept while those alone are too many).
            var allowance = _window / 10; // room left for the summary itself
            long keptFrom = 0;
            for (var keep = Math.Min(keepTurns, turns.Count); keep >= 0; keep--)
            {
                keptFrom = keep > 0
                    ? turns[^keep].Seq
                    : afterClearing.SkipWhile(e => e.Seq <= (turns.Count > 0 ? turns[^1].Seq : 0)).FirstOrDefault(e => e is UserMessage)?.Seq ?? long.MaxValue;
                var keptTokens = Tokens(_overheadChars + afterClearing.Where(e => e.Seq >= keptFrom).Sum(Chars)) + allowance;
                if (keptTokens <= _window * Target)
                {
                    break;
                }
            }

            var part = afterClearing.Where(e => e.Seq < keptFrom).ToList();
            if (part.OfType<AssistantMessage>().Any())
            {
                (var summary, usage) = await SummariseAsync([.. view.Where(e => e.Seq < keptFrom)], cancellationToken);
                candidate = candidate with { Summary = summary, KeptFromSeq = keptFrom == long.MaxValue ? history[^1].Seq + 1 : keptFrom };
                tokensAfter = Tokens(_overheadChars + View([.. current, candidate]).Sum(Chars));
            }
            else if (cleared.Count == 0)
            {
                return false; // nothing said yet that could be summarised: the prompt alone is too long
            }
        }
        else if (cleared.Count == 0)
        {
            return false;
        }

        candidate = candidate with { TokensAfter = tokensAfter };
        var stored = await _run.Journal.AppendAllAsync(usage is null ? [candidate] : [usage, candidate], cancellationToken);
        messages.Clear();
        messages.AddRange(Conversation.Rebuild([.. history, .. stored]));
        _base = tokensAfter;
        _counted = messages.Count;
        return true;
    }

    /// <summary>
    /// The model's summary of <paramref name="whole"/>; when that does not fit in a request, of it with its tool outputs
    /// left out, and when even that does not, of its later turns. A summary made of the assistant's own messages if the
    /// model cannot be asked at all.
    /// </summary>
    private async Task<(string Summary, UsageRecorded? Usage)> SummariseAsync(List<AgentEvent> whole, CancellationToken cancellationToken)
    {
        var budget = _window * _compactAt - Tokens(_overheadChars + SummaryPrompt.Length);
        var part = Tokens(whole.Sum(Chars)) <= budget
            ? whole
            : [.. whole.Select(e => e is ToolResulted { Output.Length: > ClearAbove } r
                ? r with { Output = string.Create(CultureInfo.InvariantCulture, $"[{r.Output.Length} characters of output, left out of this request]") }
                : e)];
        for (var tries = 0; tries < MaxOverflows; tries++)
        {
            while (Tokens(part.Sum(Chars)) > budget && DropOldestTurn(part))
            {
            }

            var request = Conversation.Rebuild(part);
            request.Add(new ChatMessage(ChatRole.User, SummaryPrompt));
            try
            {
                var response = await _client.GetResponseAsync(request, _options, cancellationToken);
                var usage = _models.Usage(_run.Task.Model, response.Usage);
                CostUsd += usage.CostUsd;
                var text = SummaryText(response.Text);
                return (text.Length > 0 ? text : FromMessages(part), usage);
            }
            catch (ModelCallException e) when (Overflow(e) is not null)
            {
                budget /= 2;
            }
        }

        return (FromMessages(part), null);
    }

    /// <summary>Takes the oldest turn out (keeping the first message, the task or an earlier summary); false when one turn is all there is.</summary>
    private static bool DropOldestTurn(List<AgentEvent> part)
    {
        var first = part.FindIndex(e => e is AssistantMessage);
        var second = first < 0 ? -1 : part.FindIndex(first + 1, e => e is AssistantMessage);
        if (second < 0)
        {
            return false;
        }

        part.RemoveRange(first, second - first);
        return true;
    }

    private static string FromMessages(List<AgentEvent> part) =>
        "(The model could not be asked for a summary; these are its own messages from the earlier conversation.)\n"
        + string.Join("\n", part.OfType<AssistantMessage>().Where(a => a.Text.Length > 0).TakeLast(30)
            .Select(a => $"- turn {a.Turn}: {(a.Text.Length > 300 ? a.Text[..300] + "…" : a.Text)}"));

    /// <summary>The summary in the answer: inside <c>&lt;summary&gt;</c> when the model used the tags, without its <c>&lt;analysis&gt;</c>.</summary>
    private static string SummaryText(string answer)
    {
        var inner = SummaryTag().Match(answer);
        return (inner.Success ? inner.Groups[1].Value : AnalysisTag().Replace(answer, "")).Trim();
    }

    private static string SummaryMessage(string summary, string? prompt) =>
        SummaryPreamble + "\n\n" + summary
        + (prompt is { Length: > 0 and <= PromptKeptUpTo } ? "\n\nThe task as the user first gave it:\n" + prompt : "")
        + "\n\nRecent messages are preserved verbatim. Continue the task from where it left off without asking the user further questions.";

    private static string ClearedNote(int chars, string path) => string.Create(CultureInfo.InvariantCulture,
        $"[Output cleared to keep the conversation within the context window: {chars} characters, all of them in {path}. Read them again with Bash (e.g. sed -n '1,200p' {path}) if you need them.]");

    /// <summary>Where the whole output of <paramref name="result"/> is: its spill file when the tool cut it, else a copy written now.</summary>
    private async Task<string> KeepAsync(ToolResulted result, CancellationToken cancellationToken)
    {
        if (result.FullOutputPath is { } spilled && File.Exists(spilled))
        {
            return spilled;
        }

        Directory.CreateDirectory(_run.SpillDir);
        var name = string.Concat(result.CallId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
        var path = Path.Combine(_run.SpillDir, $"cleared-{name}.txt");
        await File.WriteAllTextAsync(path, result.Output, cancellationToken); // the same text each time: a redo after a crash rewrites it
        return path;
    }

    /// <summary>The size of the request <paramref name="messages"/> make, in tokens.</summary>
    private long Estimate(List<ChatMessage> messages)
    {
        if (_counted > messages.Count)
        {
            _counted = 0;
            _base = Tokens(_overheadChars);
        }

        long chars = 0;
        for (var i = _counted; i < messages.Count; i++)
        {
            chars += messages[i].Contents.Sum(c => FramingChars + c switch
            {
                TextContent text => Chars(text.Text),
                TextReasoningContent reasoning => Chars(reasoning.Text),
                FunctionCallContent call => call.Name.Length + Conversation.ToInput(call.Arguments).GetRawText().Length,
                FunctionResultContent result => Chars(result.Result?.ToString()),
                _ => 0,
            });
        }

        return _base + Tokens(chars);
    }

    private long Tokens(long chars) => (long)Math.Ceiling(chars * _scale / CharsPerToken);

    private static long Chars(AgentEvent e) => e switch
    {
        TaskCreated c => FramingChars + Chars(c.Prompt),
        UserMessage u => FramingChars + Chars(u.Text),
        AssistantMessage a => FramingChars + Chars(a.Text),
        ToolCalled t => FramingChars + t.Name.Length + t.Input.GetRawText().Length,
        ToolResulted r => FramingChars + Chars(r.Output) + (r.IsError ? 7 : 0),
        _ => 0,
    };

    /// <summary>Characters as sent in JSON: a newline, tab, quote or backslash takes two.</summary>
    private static long Chars(string? text)
    {
        if (text is null)
        {
            return 0;
        }

        long escaped = 0;
        foreach (var c in text)
        {
            if (c is '\n' or '\r' or '\t' or '"' or '\\')
            {
                escaped++;
            }
        }

        return text.Length + escaped;
    }

    /// <summary>
    /// Whether a refused call said the prompt is longer than the model's window, and the figures it gave: Anthropic's
    /// 400 <c>prompt is too long: N tokens &gt; M maximum</c>, OpenAI's <c>context_length_exceeded</c> ("maximum context
    /// length is M tokens … resulted in N tokens"), a 413 request too large.
    /// </summary>
    public static (long? Tokens, int? Window)? Overflow(ModelCallException e)
    {
        if (e.StatusCode is not (400 or 413 or null))
        {
            return null;
        }

        var message = e.ProviderMessage;
        if (AnthropicOverflow().Match(message) is { Success: true } anthropic)
        {
            return (long.Parse(anthropic.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(anthropic.Groups[2].Value, CultureInfo.InvariantCulture));
        }

        if (OpenAIOverflow().Match(message) is { Success: true } openAI)
        {
            var tokens = OpenAITokens().Match(message);
            return (tokens.Success ? long.Parse(tokens.Groups[1].Value, CultureInfo.InvariantCulture) : null, int.Parse(openAI.Groups[1].Value, CultureInfo.InvariantCulture));
        }

        return message.Contains("prompt is too long", StringComparison.OrdinalIgnoreCase)
            || message.Contains("context_length_exceeded", StringComparison.OrdinalIgnoreCase)
            || e.StatusCode == 413
            ? (null, null)
            : null;
    }

    [GeneratedRegex(@"prompt is too long[^0-9]*(\d+)\s*tokens?\s*>\s*(\d+)", RegexOptions.IgnoreCase)]
    private static partial Regex AnthropicOverflow();

    [GeneratedRegex(@"maximum context length is (\d+) tokens", RegexOptions.IgnoreCase)]
    private static partial Regex OpenAIOverflow();

    [GeneratedRegex(@"resulted in (\d+) tokens", RegexOptions.IgnoreCase)]
    private static partial Regex OpenAITokens();

    [GeneratedRegex(@"<summary>(.*?)</summary>", RegexOptions.Singleline)]
    private static partial Regex SummaryTag();

    [GeneratedRegex(@"<analysis>.*?</analysis>", RegexOptions.Singleline)]
    private static partial Regex AnalysisTag();
}
