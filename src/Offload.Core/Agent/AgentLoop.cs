using System.Text.Json;
using Microsoft.Extensions.AI;
using Offload.Agent.Permissions;
using Offload.Agent.Subagents;
using Offload.Agent.Tools;
using Offload.Engines;
using Offload.Models;
using Offload.Protocol;
using Offload.Redaction;

namespace Offload.Agent;

/// <summary>
/// The builtin engine: one model, six tools, a loop. Limits are checked before each model
/// call; every step is in the journal before the next one starts (tool calls before they run,
/// results after), so a run can always be resumed from the journal.
/// Before each tool runs: rules → approval → sandbox → run (<see cref="PermissionPolicy"/> decides,
/// <see cref="PermissionGate"/> parks the task for the user's answer, the tool confines itself).
/// The conversation is kept inside the model's context window by <see cref="Compaction"/>.
/// </summary>
/// <param name="redactor">Told the task's own secrets (<see cref="WorktreeIncludeSecrets"/>) before its first tool runs; null in tests without a daemon.</param>
public sealed class AgentLoop(ModelGateway models, ToolRegistry tools, PermissionGate permissions, SecretRedactor? redactor = null) : IEngine
{
    public string Name => "builtin";

    public async Task<EngineOutcome> RunAsync(EngineRun run, CancellationToken cancellationToken)
    {
        var journal = run.Journal;
        var task = run.Task;
        var limits = run.Config.Limits;

        // A question left open by a restart is asked again; a subagent cut off by one goes on from its own events.
        var parked = Conversation.PendingCalls(run.History).Where(c => c.Name == AgentTool.ToolName || Conversation.IsParked(run.History, c)).ToList();
        foreach (var pending in Conversation.PendingCalls(run.History).Except(parked))
        {
            await journal.AppendAsync(new ToolResulted(pending.CallId, pending.Name, Conversation.InterruptedNote, IsError: true), cancellationToken);
        }

        var history = await run.Journal.ReadAllAsync(cancellationToken);
        if (Conversation.Current(history).LastOrDefault(e => e is AssistantMessage or ToolCalled or ToolResulted or UserMessage or TaskCreated) is AssistantMessage final) // a cut-off answer is followed by its continuation request
        {
            return new EngineOutcome.Succeeded(final.Text); // stopped after the answer, before the finish was recorded
        }

        // The sandbox (and the worktree it needs) is made ready while the first model call is out; the tools wait for it.
        var prepared = ToolContextAsync(run, cancellationToken);
        var wrote = false; // a tool that writes was called in this run (whether or not it was allowed to)
        EngineOutcome Ended(EngineOutcome outcome) => outcome with { FilesUntouched = !wrote };
        try
        {
            var messages = Conversation.Rebuild(history);
            var options = new ChatOptions
            {
                Instructions = await SystemPrompt.BuildAsync(run, cancellationToken),
                ModelId = ModelRef.Parse(task.Model, models.Settings).Name,
            };
            using var client = models.Create(task.Model, retry => journal.AppendAsync(retry, CancellationToken.None));
            PermissionPolicy policy;
            try
            {
                policy = permissions.PolicyFor(run, bashContained: Sandbox.IsAvailable); // every Bash command runs in bubblewrap when it is there
            }
            catch (PermissionSettingsException e)
            {
                return new EngineOutcome.Failed(e.Message);
            }

            var budget = new TaskBudget(task.Id, task.Turns, task.Usage.CostUsd, task.MaxTurns ?? limits.MaxTurns, task.MaxCostUsd ?? limits.MaxCostUsd);
            var subagents = new SubagentRunner(models, tools, permissions, run, policy, budget);
            var runTools = new ToolRegistry([.. tools.Values, new AgentTool(await AgentTypes.LoadAsync(run, cancellationToken), subagents)]);
            options.Tools = [.. runTools.Values.Select(t => AIFunctionFactory.CreateDeclaration(t.Name, t.Description, t.InputSchema))];

            ToolRunner? runner = null;
            if (parked.Count > 0)
            {
                runner = new ToolRunner(runTools, permissions, run, policy, await prepared);
                wrote |= parked.Any(c => Writes(runTools, c.Name));
                await runner.RunTurnAsync(parked, cancellationToken);

                history = await journal.ReadAllAsync(cancellationToken);
                messages = Conversation.Rebuild(history);
            }

            var compaction = new Compaction(run, models, client, options, history, messages);
            history = []; // the messages carry what the model needs (the compaction took its measure): the journal's events are not held for the whole run

            var lastCall = "";
            var repeats = 0;

            while (true)
            {
                if (run.SoftStop.IsCancellationRequested)
                {
                    return new EngineOutcome.Suspended();
                }

                if (budget.Exceeded(compaction.CostUsd) is { } limited)
                {
                    return Ended(new EngineOutcome.Limited(limited));
                }

                var response = await compaction.CallAsync(messages, budget.Turns, cancellationToken); // compacts first when the window would overflow
                var usage = models.Usage(task.Model, response.Usage);
                var turn = budget.Spend(usage.CostUsd);

                var text = string.Concat(response.Messages.SelectMany(m => m.Contents).OfType<TextContent>().Select(t => t.Text)).Trim();
                var calls = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().ToList();
                var thinking = Conversation.ThinkingOf(response.Messages.SelectMany(m => m.Contents));
                if (response.FinishReason == ChatFinishReason.Length)
                {
                    // Cut off by the output-token limit: never the final answer, and a call in it may be cut too, so none runs.
                    var note = new UserMessage(Conversation.OutputLimitNote, Conversation.OutputLimitSource);
                    await journal.AppendAllAsync([usage, new AssistantMessage(turn, text, thinking), note], cancellationToken);
                    var cut = new ChatMessage(ChatRole.Assistant, [.. (thinking ?? []).Select(Conversation.ToContent)]); // as Rebuild makes it
                    if (text.Length > 0)
                    {
                        cut.Contents.Add(new TextContent(text));
                    }

                    if (cut.Contents.Count > 0)
                    {
                        messages.Add(cut);
                    }

                    messages.Add(new ChatMessage(ChatRole.User, note.Text));
                    continue;
                }


                // One answer, one transaction: a crash between the text and its tool calls would leave an answer that reads as final.
                var stored = await journal.AppendAllAsync(
                    [usage, new AssistantMessage(turn, text, thinking), .. calls.Select(c => new ToolCalled(turn, c.CallId, c.Name, Conversation.ToInput(c.Arguments)))],
                    cancellationToken);
                if (calls.Count == 0)
                {
                    return Ended(new EngineOutcome.Succeeded(text));
                }

                var assistant = new ChatMessage(ChatRole.Assistant, [.. (thinking ?? []).Select(Conversation.ToContent)]); // as the journal has them, so a resume sends the same
                if (text.Length > 0)
                {
                    assistant.Contents.Add(new TextContent(text));
                }

                var recorded = stored.OfType<ToolCalled>().ToList();
                foreach (var call in calls)
                {
                    assistant.Contents.Add(new FunctionCallContent(call.CallId, call.Name, call.Arguments));
                }

                messages.Add(assistant);
                runner ??= new ToolRunner(runTools, permissions, run, policy, await prepared);
                wrote |= recorded.Any(c => Writes(runTools, c.Name));
                var ran = await runner.RunTurnAsync(recorded, cancellationToken);
                messages.Add(new ChatMessage(ChatRole.Tool, [.. ran.Select(Conversation.ResultContent)]));
                foreach (var call in recorded)
                {
                    var key = call.Name + "\n" + call.Input.GetRawText();
                    repeats = key == lastCall ? repeats + 1 : 1;
                    lastCall = key;
                }

                if (run.TurnEnded is { } turnEnded && recorded.Any(c => Writes(runTools, c.Name)))
                {
                    await turnEnded(turn, cancellationToken);
                }

                if (repeats >= limits.RepeatLimit)
                {
                    return Ended(new EngineOutcome.Limited($"the agent repeated the same {recorded[^1].Name} call {repeats} times in a row"));
                }
            }
        }
        finally
        {
            await ((Task)prepared).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // a command's leftovers are adopted whatever the run did
        }
    }

    /// <summary>Whether the tool may change files; a name that is no tool changes nothing (the call fails).</summary>
    private static bool Writes(ToolRegistry tools, string toolName) => tools.TryGetValue(toolName, out var tool) && tool.Mutates;

    private async Task<ToolContext> ToolContextAsync(EngineRun run, CancellationToken cancellationToken)
    {
        await run.WorktreeReady.WaitAsync(cancellationToken);
        redactor?.AddTaskSecrets(run.Task.Id, await WorktreeIncludeSecrets.ReadAsync(run.Task.RepoPath, cancellationToken));
        var limits = run.Config.Limits;
        var sandbox = await Sandbox.ForTaskAsync(run.Task.RepoPath, run.Worktree, run.Task.Branch, run.SpillDir, run.Config.Sandbox, cancellationToken);
        var current = Conversation.Current(await run.Journal.ReadAllAsync(cancellationToken));
        return new ToolContext(run.Worktree, run.SpillDir, limits.MaxToolOutputChars, TimeSpan.FromSeconds(limits.BashTimeoutSeconds),
            SandboxEnvironment.ForCommands(sandboxed: sandbox is not null), sandbox, run.Config.Sandbox.Limits,
            FileReads.From(current), TaskPlan.From(current));
    }
}
