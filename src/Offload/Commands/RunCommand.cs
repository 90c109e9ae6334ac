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
        var maxTurns = new Option<int?>("--max-turns") { Description = "Stop after this many model turns (status limited)" };
        var maxCost = new Option<decimal?>("--max-cost") { Description = "Stop once the task has cost this many US dollars" };
        var timeout = new Option<string?>("--timeout") { Description = "Stop after this much wall-clock time, e.g. 90s, 20m, 2h (time spent waiting for your approval does not count)" };
        var json = Common.JsonOption();
        var command = new Command("run", "Hand a task to a background agent; returns at once with its id")
        {
            prompt, file, model, engine, baseRef, name, maxTurns, maxCost, timeout, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var text = ReadPrompt(parse.GetValue(prompt), parse.GetValue(file));
            var request = new CreateTaskRequest(
                text, Directory.GetCurrentDirectory(), parse.GetValue(model), parse.GetValue(engine), parse.GetValue(baseRef),
                parse.GetValue(name), parse.GetValue(maxTurns), parse.GetValue(maxCost), ParseDuration(parse.GetValue(timeout)));
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
                throw new CliException(ExitCodes.BadInput, $"the prompt file {file.FullName} does not exist");
            }

            return File.ReadAllText(file.FullName);
        }

        if (argument == "-")
        {
            return Console.In.ReadToEnd();
        }

        return argument ?? throw new CliException(ExitCodes.BadInput, "no prompt given",
            "offload run \"what the agent should do\"   (or --file PATH, or - to read stdin)");
    }

    internal static int? ParseDuration(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var t = text.Trim().ToLowerInvariant();
        var unit = t[^1] switch { 's' => 1, 'm' => 60, 'h' => 3600, 'd' => 86400, _ => 0 };
        var number = unit == 0 ? t : t[..^1];
        if (unit == 0)
        {
            unit = 1;
        }

        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value <= 0)
        {
            throw new CliException(ExitCodes.BadInput, $"'{text}' is not a duration", "write it like 90s, 20m or 2h");
        }

        return (int)Math.Ceiling(value * unit);
    }
}
