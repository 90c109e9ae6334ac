using System.CommandLine;
using System.Globalization;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class RunCommand
{
    public static Command Create()
    {
        var prompt = new Argument<string?>("prompt") { Description = "What the agent should do; `-` reads it from stdin", Arity = ArgumentArity.ZeroOrOne };
        var file = new Option<FileInfo?>("--file") { Description = "Read the prompt from a file" };
        var model = new Option<string?>("--model", "-m") { Description = "provider:model, e.g. anthropic:claude-opus-4-8, openai:gpt-5, ollama:qwen3-coder, sim:demo" };
        var engine = new Option<string?>("--engine") { Description = "builtin (default), claude (Claude Code CLI) or codex (Codex CLI)" };
        var baseRef = new Option<string?>("--base") { Description = "Start from this commit or branch (default: the current HEAD)" };
        var name = new Option<string?>("--name") { Description = "A title for the task (default: the prompt's first line)" };
        var maxTurns = Common.MaxTurnsOption("Stop after this many model turns (status limited)");
        var maxCost = Common.MaxCostOption("Stop once the task has cost this many US dollars");
        var timeout = Common.TimeoutOption("Stop after this much wall-clock time, e.g. 90s, 20m, 2h (time spent waiting for your approval does not count)");
        var planFirst = new Option<bool>("--plan-first")
        {
            Description = "Plan mode, for prompts with vague edges: the agent only reads and searches, then proposes a plan and waits (needs_input) " +
                "until you `offload approve ID`, or `offload reply ID \"…\"` to send it back to planning; only then may it write or run commands",
        };
        var check = new Option<string?>("--check")
        {
            Description = "A command that defines done, e.g. \"npm test\": it runs in the sandbox after the agent's final answer; a failure goes back " +
                "to the agent, and the task succeeds only once it passes (default: \"check\" in the repository's .offload/config.json)",
        };
        var checkTries = new Option<int?>("--check-tries") { Description = $"How many times the check may run before the task ends failed (default {Config.OffloadConfig.DefaultCheckTries})" };
        var models = new Option<string?>("--models") { Description = "Best-of-N: the same task on each of these models (comma-separated), as one group; `offload merge gN` merges the group's pick" };
        var attempts = new Option<int?>("-n") { Description = "Best-of-N: this many attempts (per model with --models), as one group" };
        var tags = new Option<string[]>("--tag") { Description = "Label the task (repeatable): `ls --tag`, `stats --tag`, `compare --tag` find it", AllowMultipleArgumentsPerToken = false };
        var again = new Option<long?>("--again")
        {
            Description = "Run task ID's prompt again on the current HEAD, with its model, engine, check, limits and tags unless given here; " +
                "linked to it, so `offload compare ID` shows the series",
        };
        var json = Common.JsonOption();
        var command = new Command("run", "Hand a task to a background agent; returns at once with its id")
        {
            prompt, file, model, engine, baseRef, name, maxTurns, maxCost, timeout, planFirst, check, checkTries, models, attempts, tags, again, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var againOf = parse.GetValue(again);
            var text = againOf is not null && parse.GetValue(prompt) is null && parse.GetValue(file) is null
                ? "" // the daemon takes the original's
                : ReadPrompt(parse.GetValue(prompt), parse.GetValue(file));
            var modelList = parse.GetValue(models)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (modelList is { Length: 0 })
            {
                throw new CliException(ExitCodes.BadInput, "--models names no model", "e.g. --models anthropic:claude-opus-4-8,openai:gpt-5");
            }

            if (modelList is not null && parse.GetValue(model) is not null)
            {
                throw new CliException(ExitCodes.BadInput, "give either --model or --models, not both");
            }

            var request = new CreateTaskRequest(
                text, Directory.GetCurrentDirectory(), parse.GetValue(model), parse.GetValue(engine), parse.GetValue(baseRef),
                parse.GetValue(name), parse.GetValue(maxTurns), parse.GetValue(maxCost), parse.GetValue(timeout), parse.GetValue(planFirst))
            {
                Check = parse.GetValue(check),
                CheckTries = parse.GetValue(checkTries),
                Models = modelList,
                Attempts = parse.GetValue(attempts),
                Tags = parse.GetValue(tags) is { Length: > 0 } t ? t : null,
                AgainOf = againOf,
            };
            var group = modelList is { Length: > 1 } || request.Attempts > 1;
            return await Common.WithClientAsync(async client =>
            {
                IReadOnlyList<TaskInfo> tasks;
                GroupInfo? made = null;
                if (group)
                {
                    made = await client.PostAsync<GroupInfo>("v1/groups", request, ct);
                    tasks = made.Tasks;
                }
                else
                {
                    tasks = [await client.PostAsync<TaskInfo>("v1/tasks", request with { Model = request.Model ?? modelList?.Single(), Models = null }, ct)];
                }

                if (await client.TryStatusAsync(ct) is { Sandbox: false })
                {
                    Console.Error.WriteLine($"offload: warning: bubblewrap is not available, so the agent's shell commands run without a sandbox (each one asks first). `offload doctor` says more; install it: {Agent.Tools.Sandbox.InstallHint}");
                }

                if (parse.GetValue(json))
                {
                    if (made is not null)
                    {
                        Output.Json(made);
                    }
                    else
                    {
                        Output.Json(tasks[0]);
                    }
                }
                else if (made is not null)
                {
                    Console.Out.WriteLine($"group g{made.Id}: {tasks.Count} tasks queued from one base");
                    foreach (var t in tasks)
                    {
                        Console.Out.WriteLine($"  task {t.Id} {t.Model} · branch {t.Branch}");
                    }

                    if (!Console.IsOutputRedirected)
                    {
                        Console.Out.WriteLine(Output.Paint($"  offload wait g{made.Id}   ·   offload compare g{made.Id}   ·   offload merge g{made.Id}", "2"));
                    }
                }
                else
                {
                    var task = tasks[0];
                    Console.Out.WriteLine($"task {task.Id} {task.Status.ToWire()} · branch {task.Branch}"
                        + (task.AgainOf is { } of ? $" · again of task {of}" : "") + (task.Check is { } c ? $" · check `{c}`" : ""));
                    if (!Console.IsOutputRedirected)
                    {
                        Console.Out.WriteLine(Output.Paint($"  offload logs {task.Id} -f   ·   offload show {task.Id}   ·   offload diff {task.Id}", "2"));
                    }
                }

                return ExitCodes.Ok;
            }, cancellationToken: ct);
        });
        return command;
    }

    private static string ReadPrompt(string? argument, FileInfo? file)
    {
        if (file is not null)
        {
            if (argument is not null)
            {
                throw new CliException(ExitCodes.BadInput, "give the prompt either as an argument or with --file, not both");
            }

            if (!file.Exists)
            {
                throw new CliException(ExitCodes.BadInput, $"the prompt file {file.FullName} does not exist{(Directory.Exists(file.FullName) ? " (it is a folder)" : "")}");
            }

            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(file.FullName);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliException(ExitCodes.BadInput, $"the prompt file {file.FullName} cannot be read: {e.Message}");
            }

            return Text(bytes, $"the prompt file {file.FullName}");
        }

        if (argument == "-")
        {
            return Text(Common.ReadStdin(), "the prompt read from stdin");
        }

        return Text(argument ?? throw new CliException(ExitCodes.BadInput, "no prompt given",
            "offload run \"what the agent should do\"   (or --file PATH, or - to read stdin)"), "the prompt");
    }

    private static string Text(byte[] bytes, string what) => Text(Common.Utf8(bytes, what), what);

    private static string Text(string text, string what) => text.Contains('\0', StringComparison.Ordinal)
        ? throw new CliException(ExitCodes.BadInput, $"{what} contains a NUL byte, so it is not text; was a binary file given by mistake?",
            "give plain text; to show the agent a binary file, put it in the repository and name its path in the prompt")
        : text;
}
