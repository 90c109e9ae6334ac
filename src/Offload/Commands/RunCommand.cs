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
        var engine = new Option<string?>("--engine") { Description = "builtin (default) or claude" };
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
        var json = Common.JsonOption();
        var command = new Command("run", "Hand a task to a background agent; returns at once with its id")
        {
            prompt, file, model, engine, baseRef, name, maxTurns, maxCost, timeout, planFirst, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var text = ReadPrompt(parse.GetValue(prompt), parse.GetValue(file));
            var request = new CreateTaskRequest(
                text, Directory.GetCurrentDirectory(), parse.GetValue(model), parse.GetValue(engine), parse.GetValue(baseRef),
                parse.GetValue(name), parse.GetValue(maxTurns), parse.GetValue(maxCost), parse.GetValue(timeout), parse.GetValue(planFirst));
            return await Common.WithClientAsync(async client =>
            {
                var task = await client.PostAsync<TaskInfo>("v1/tasks", request, ct);
                if (await client.TryStatusAsync(ct) is { Sandbox: false })
                {
                    Console.Error.WriteLine($"offload: warning: bubblewrap is not available, so the agent's shell commands run without a sandbox (each one asks first). `offload doctor` says more; install it: {Agent.Tools.Sandbox.InstallHint}");
                }

                if (parse.GetValue(json))
                {
                    Output.Json(task);
                }
                else
                {
                    Console.Out.WriteLine($"task {task.Id} {task.Status.ToWire()} · branch {task.Branch}");
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
