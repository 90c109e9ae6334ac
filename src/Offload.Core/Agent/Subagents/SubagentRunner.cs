using Microsoft.Extensions.AI;
using Offload.Agent.Permissions;
using Offload.Agent.Tools;
using Offload.Engines;
using Offload.Models;
using Offload.Protocol;

namespace Offload.Agent.Subagents;

/// <summary>
/// Runs subagents for a task's <see cref="AgentTool"/>: each one a model loop of its own (its own messages and tools, the
/// task's worktree, sandbox and permission rules), whose every event is in the task's journal marked with the Agent
/// call's id (<see cref="AgentEvent.Subagent"/>). A subagent started again after a restart goes on from those events.
/// Its turns and cost are the task's (<see cref="TaskBudget"/>); at most <c>limits.maxSubagents</c> run at once.
/// </summary>
public sealed class SubagentRunner
{
    /// <summary>The <see cref="UserMessage.Source"/> of a subagent's prompt, the first event of its conversation.</summary>
    public const string PromptSource = "agent";

    private const string Workplace = """
        Notes:
        - You work in the git worktree of a task another agent is doing in the background; paths are relative to the
          worktree root, and you cannot reach outside it. Nobody can answer questions while you work.
        - Do not commit. Your final message (a reply without a tool call) is all the other agent sees of your work.
        """;

    private static readonly Dictionary<string, string> Aliases = new(StringComparer.Ordinal)
    {
        ["opus"] = "claude-opus-4-8",
        ["sonnet"] = "claude-sonnet-4-5",
        ["haiku"] = "claude-haiku-4-5",
        ["fable"] = "claude-opus-4-8",
    };

    private readonly ModelGateway _models;
    private readonly ToolRegistry _tools;
    private readonly PermissionGate _permissions;
    private readonly EngineRun _run;
    private readonly PermissionPolicy _policy;
    private readonly TaskBudget _budget;
    private readonly SemaphoreSlim _slots;

    /// <param name="tools">The task's tools without <c>Agent</c>: a subagent starts none of its own.</param>
    internal SubagentRunner(ModelGateway models, ToolRegistry tools, PermissionGate permissions, EngineRun run, PermissionPolicy policy, TaskBudget budget)
    {
        _models = models;
        _tools = tools;
        _permissions = permissions;
        _run = run;
        _policy = policy;
        _budget = budget;
        var cap = run.Config.Limits.MaxSubagents;
        _slots = new SemaphoreSlim(cap, cap);
    }

    /// <summary>The subagent of the Agent call <paramref name="callId"/>, run to its final message (the tool's result).</summary>
    public async Task<ToolResult> RunAsync(string callId, AgentType type, string prompt, string? model, ToolContext context, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken);
        try
        {
            return await ConverseAsync(callId, type, prompt, model ?? type.Model, context, cancellationToken);
        }
        finally
        {
            _slots.Release();
        }
    }

    private async Task<ToolResult> ConverseAsync(string callId, AgentType type, string prompt, string? wanted, ToolContext context, CancellationToken cancellationToken)
    {
        var journal = _run.Journal;
        var history = await journal.ReadAllAsync(cancellationToken);
        var mine = Conversation.Current(history, callId);
        List<ToolCalled> parked = [];
        if (mine.Count == 0)
        {
            await journal.AppendAsync(new UserMessage(prompt, PromptSource) { Subagent = callId }, cancellationToken);
        }
        else
        {
            // Started before a restart: its calls cut off by it are answered as the task's own are (a question it was
            // waiting on is asked again, below), and it goes on.
            var pendingCalls = Conversation.PendingCalls(history, callId);
            parked = [.. pendingCalls.Where(c => Conversation.IsParked(history, c))];
            foreach (var pending in pendingCalls.Except(parked))
            {
                await journal.AppendAsync(new ToolResulted(pending.CallId, pending.Name, Conversation.InterruptedNote, IsError: true) { Subagent = callId }, cancellationToken);
            }

            if (mine.LastOrDefault(e => e is AssistantMessage or ToolCalled or ToolResulted or UserMessage) is AssistantMessage done)
            {
                return Final(done.Text); // it had answered; the restart came before the Agent call's result was stored
            }
        }

        history = await journal.ReadAllAsync(cancellationToken);

        string model;
        try
        {
            model = ModelFor(wanted);
        }
        catch (OffloadException e)
        {
            return ToolResult.Error($"The {type.Name} agent's model {wanted} cannot be used: {e.Message}");
        }

        var tools = new ToolRegistry(_tools.Values.Where(t => type.Allows(t.Name)));
        var options = new ChatOptions
        {
            Instructions = type.SystemPrompt + "\n\n" + Workplace,
            Tools = [.. tools.Values.Select(t => AIFunctionFactory.CreateDeclaration(t.Name, t.Description, t.InputSchema))],
            ModelId = ModelRef.Parse(model, _models.Settings).Name,
        };
        var runner = new ToolRunner(tools, _permissions, _run, _policy,
            context with { Reads = context.Reads is null ? null : FileReads.From(Conversation.Current(history, callId)), CallId = null }, callId);
        if (parked.Count > 0)
        {
            await runner.RunTurnAsync(parked, cancellationToken); // the question it was waiting on, asked again (or its answer, found)
            history = await journal.ReadAllAsync(cancellationToken);
        }

        var messages = Conversation.Rebuild(history, callId);
        var turns = Conversation.Current(history, callId).OfType<UsageRecorded>().Count(); // its own, before a restart too
        history = [];
        using var client = _models.Create(model, retry => journal.AppendAsync(retry with { Subagent = callId }, CancellationToken.None));
        while (true)
        {
            // The daemon is stopping: the subagent ends here, between two steps, with its Agent call left open in the
            // journal; the task's run ends suspended, and the next daemon start goes on with this subagent.
            _run.SoftStop.ThrowIfCancellationRequested();
            if (_budget.Exceeded() is { } limited)
            {
                return ToolResult.Error($"The subagent stopped before it finished: the task's {limited}.");
            }

            if (turns >= type.MaxTurns)
            {
                return ToolResult.Error($"The {type.Name} agent reached its maxTurns limit ({type.MaxTurns} turns, set in {type.Source}) before it finished; " +
                    "its work so far is in the worktree. Do the rest yourself, or start an agent with a narrower task.");
            }

            turns++;

            var response = await client.GetResponseAsync(messages, options, cancellationToken);
            var usage = _models.Usage(model, response.Usage) with { Subagent = callId };
            var turn = _budget.Spend(usage.CostUsd);
            var contents = response.Messages.SelectMany(m => m.Contents).ToList();
            var text = string.Concat(contents.OfType<TextContent>().Select(t => t.Text)).Trim();
            var thinking = Conversation.ThinkingOf(contents);
            var assistant = new ChatMessage(ChatRole.Assistant, [.. (thinking ?? []).Select(Conversation.ToContent)]);
            if (text.Length > 0)
            {
                assistant.Contents.Add(new TextContent(text));
            }

            if (response.FinishReason == ChatFinishReason.Length)
            {
                var note = new UserMessage(Conversation.OutputLimitNote, Conversation.OutputLimitSource) { Subagent = callId };
                await journal.AppendAllAsync([usage, new AssistantMessage(turn, text, thinking) { Subagent = callId }, note], cancellationToken);
                if (assistant.Contents.Count > 0)
                {
                    messages.Add(assistant);
                }

                messages.Add(new ChatMessage(ChatRole.User, note.Text));
                continue;
            }

            var calls = contents.OfType<FunctionCallContent>().ToList();
            var stored = await journal.AppendAllAsync(
                [usage, new AssistantMessage(turn, text, thinking) { Subagent = callId },
                    .. calls.Select(c => new ToolCalled(turn, c.CallId, c.Name, Conversation.ToInput(c.Arguments)) { Subagent = callId })],
                cancellationToken);
            if (calls.Count == 0)
            {
                return Final(text);
            }

            foreach (var call in calls)
            {
                assistant.Contents.Add(new FunctionCallContent(call.CallId, call.Name, call.Arguments));
            }

            messages.Add(assistant);
            var ran = await runner.RunTurnAsync([.. stored.OfType<ToolCalled>()], cancellationToken);
            messages.Add(new ChatMessage(ChatRole.Tool, [.. ran.Select(Conversation.ResultContent)]));
        }
    }

    private static ToolResult Final(string text) => new(text.Length > 0 ? text : "(the subagent finished without a message)");

    /// <summary>
    /// The subagent's model: the task's unless the call or the agent file names one. Claude Code's aliases (<c>opus</c>,
    /// <c>sonnet</c>, <c>haiku</c>, <c>fable</c>) pick an Anthropic model when the task runs on one, else the task's model.
    /// </summary>
    private string ModelFor(string? wanted)
    {
        var parent = _run.Task.Model;
        if (string.IsNullOrWhiteSpace(wanted) || wanted == "inherit")
        {
            return parent;
        }

        if (Aliases.TryGetValue(wanted, out var name))
        {
            var provider = ModelRef.Parse(parent, _models.Settings).Provider;
            return provider == "anthropic" ? $"{provider}:{name}" : parent;
        }

        return _models.Resolve(wanted, "builtin", _run.Task.RepoPath);
    }
}
