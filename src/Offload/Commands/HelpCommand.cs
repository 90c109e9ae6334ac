using System.CommandLine;
using Offload.Config;

namespace Offload.Cli.Commands;

public static class HelpCommand
{
    private static readonly (string Name, string About)[] Topics =
    [
        ("exit-codes", "what each exit code means"),
        ("statuses", "the statuses a task goes through, and what moves it"),
        ("config", "every setting, its default, and where it is read from"),
        ("completion", "shell completion for bash, zsh and fish"),
    ];

    public static Command Create()
    {
        var topic = new Argument<string?>("topic") { Description = "A topic (exit-codes, statuses, config, completion) or a command", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("help", "Help topics: `offload help` lists them; `offload help COMMAND` is COMMAND --help") { topic };
        command.SetAction(parse =>
        {
            var root = parse.RootCommandResult.Command;
            switch (parse.GetValue(topic))
            {
                case null:
                    root.Parse("--help").Invoke(); // what Offload is and its commands, then the topics
                    Console.Out.WriteLine("Help topics (offload help TOPIC):");
                    foreach (var (name, about) in Topics)
                    {
                        Console.Out.WriteLine($"  {name,-12} {about}");
                    }

                    Console.Out.WriteLine();
                    Console.Out.WriteLine("Each command's options: offload COMMAND --help (or offload help COMMAND).");
                    return ExitCodes.Ok;
                case "exit-codes":
                    Console.Out.WriteLine(ExitCodes.Table);
                    return ExitCodes.Ok;
                case "statuses":
                    Console.Out.WriteLine(Statuses);
                    return ExitCodes.Ok;
                case "config":
                    Console.Out.WriteLine(Config());
                    return ExitCodes.Ok;
                case "completion":
                    Console.Out.WriteLine(CompletionCommand.Help);
                    return ExitCodes.Ok;
                case { } name when root.Subcommands.FirstOrDefault(c => c.Name == name || c.Aliases.Contains(name)) is { } sub:
                    return root.Parse([sub.Name, "--help"]).Invoke();
                case { } name:
                    throw new CliException(ExitCodes.BadInput, $"there is no help topic or command '{name}'",
                        $"`offload help` lists the topics ({string.Join(", ", Topics.Select(t => t.Name))}); `offload --help` the commands");
            }
        });
        return command;
    }

    private const string Statuses = """
        queued       stored, waiting for a free slot (maxParallel)
        running      the agent works in its worktree
        needs_input  it waits for you: an approval or its plan (`offload show ID` says what; approve, deny or reply)
        succeeded    it gave its final answer (and its check passed); the work is on its branch
        failed       it could not finish: the reason is in `offload show ID`; what it did is on its branch
        cancelled    you cancelled it; what it did is on its branch
        limited      a budget stopped it: turns, cost, wall time, or the same action repeated

        queued → running ⇄ needs_input → succeeded | failed | cancelled | limited
        `offload reply ID` runs an ended task again; `offload retry ID` starts it over from its base.
        """;

    private static string Config()
    {
        var lines = new List<string>
        {
            $"Your config: {OffloadPaths.FromEnvironment().ConfigFile} (`offload config path`). A repository's .offload/config.json may set",
            $"{string.Join(", ", ConfigEditor.RepositoryKeys)} for its own tasks.",
            "`offload config get KEY`, `offload config set KEY VALUE`, `offload config unset KEY`; a running daemon applies a change at once",
            "(telemetry waits for `offload daemon stop`; so does an API key set in the environment after the daemon started).",
            "",
            "setting                              default",
        };
        lines.AddRange(ConfigEditor.Keys().Select(k => $"  {k.Key,-36} {k.Default}"));
        lines.Add("");
        lines.Add("docs/config.md says what each one does.");
        return string.Join('\n', lines);
    }
}
