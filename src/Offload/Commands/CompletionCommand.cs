using System.CommandLine;
using System.CommandLine.Completions;
using Offload.Config;
using Offload.Protocol;

namespace Offload.Cli.Commands;

/// <summary>
/// <c>offload completion bash|zsh|fish</c> prints a script for the shell; the script asks <c>offload __complete WORDS…</c>
/// (hidden) for the candidates of the last word: commands, options, an option's values (System.CommandLine's own
/// completions of the parsed line), and task numbers from the daemon when it runs (never started for a completion).
/// </summary>
public static class CompletionCommand
{
    public const string Help = """
        Shell completion: commands, options, their values, and task numbers from the running daemon.
          bash: echo 'source <(offload completion bash)' >> ~/.bashrc
          zsh:  echo 'source <(offload completion zsh)' >> ~/.zshrc
          fish: offload completion fish > ~/.config/fish/completions/offload.fish
        Then open a new shell. Task numbers are offered only while the daemon runs (a completion never starts it).
        """;

    public static Command Create()
    {
        var shell = new Argument<string>("shell") { Description = "bash, zsh or fish" };
        shell.AcceptOnlyFromAmong("bash", "zsh", "fish");
        var command = new Command("completion", "Print the shell completion script for bash, zsh or fish (`offload help completion` says how to install it)") { shell };
        command.SetAction(parse =>
        {
            Console.Out.Write(parse.GetValue(shell) switch
            {
                "bash" => Bash,
                "zsh" => Zsh,
                _ => Fish,
            });
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The hidden command the scripts call: the words after <c>offload</c>, the last one being completed (maybe empty).</summary>
    public static Command CreateComplete()
    {
        var words = new Argument<string[]>("words") { Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("__complete") { words };
        command.Hidden = true;
        command.SetAction(parse =>
        {
            var line = parse.GetValue(words) ?? [];
            var root = parse.RootCommandResult.Command;
            foreach (var candidate in Candidates(root, line))
            {
                Console.Out.WriteLine(candidate);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>What may come as the last of <paramref name="words"/>, starting with what it has so far.</summary>
    public static IEnumerable<string> Candidates(Command root, IReadOnlyList<string> words)
    {
        var current = words.Count == 0 ? "" : words[^1];
        var before = words.Take(Math.Max(0, words.Count - 1)).ToArray();
        var parse = root.Parse([.. before, current]);
        IEnumerable<CompletionItem> items;
        if (before.Length > 0 && root.Parse(before).CommandResult.Command.Options
                .FirstOrDefault(o => o.ValueType != typeof(bool) && (o.Name == before[^1] || o.Aliases.Contains(before[^1]))) is { } option)
        {
            items = option.GetCompletions(CompletionContext.Empty); // the option's value: its choices, if it has any
        }
        else
        {
            var position = string.Join(' ', before).Length + (before.Length > 0 ? 1 : 0) + current.Length;
            items = parse.GetCompletions(position);
        }

        // The long spelling of help only (not -h, -?, /h, /?), and never this hidden command.
        return items.Select(c => c.Label)
            .Where(label => label.StartsWith(current, StringComparison.Ordinal) && label is not ("__complete" or "-?" or "-h") && !label.StartsWith('/'))
            .Distinct(StringComparer.Ordinal);
    }

    /// <summary>Task numbers for an id argument, newest first, from a daemon that runs; none when none does.</summary>
    public static IEnumerable<CompletionItem> TaskIds(CompletionContext context)
    {
        var paths = OffloadPaths.FromEnvironment();
        if (!File.Exists(paths.Socket))
        {
            return [];
        }

        try
        {
            using var client = new DaemonClient(paths);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            var page = client.GetAsync<Page<TaskInfo>>("v1/tasks?limit=100", timeout.Token).GetAwaiter().GetResult();
            return page.Items.Select(t => new CompletionItem(Common.Id(t.Id), detail: t.Title));
        }
        catch (Exception e) when (e is CliException or HttpRequestException or IOException or OperationCanceledException or System.Text.Json.JsonException)
        {
            return []; // no daemon, another version, or too slow: no numbers, never an error in the middle of a command line
        }
    }

    private const string Bash = """
        # offload completion for bash: source <(offload completion bash)
        _offload() {
            local IFS=$'\n'
            COMPREPLY=($(offload __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
        }
        complete -o default -F _offload offload

        """;

    private const string Zsh = """
        #compdef offload
        # offload completion for zsh: source <(offload completion zsh)
        _offload() {
            local -a candidates
            candidates=("${(@f)$(offload __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
            compadd -- "${candidates[@]}"
        }
        if (( $+functions[compdef] )); then compdef _offload offload; else autoload -Uz compinit && compinit && compdef _offload offload; fi

        """;

    private const string Fish = """
        # offload completion for fish: offload completion fish > ~/.config/fish/completions/offload.fish
        function __offload_complete
            set -l words (commandline -opc)[2..-1] (commandline -ct)
            offload __complete -- $words 2>/dev/null
        end
        complete -c offload -f -a '(__offload_complete)'

        """;
}
