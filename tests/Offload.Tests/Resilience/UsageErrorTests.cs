using System.Text.RegularExpressions;
using Offload.Tests.EndToEnd;

namespace Offload.Tests.Resilience;

/// <summary>
/// A command line the parser refuses, for every command: exit 2 (the README's "usage error"), one line saying what was
/// wrong, then that command's usage, short; never a .NET type name or the whole help. Nothing reaches the daemon.
/// </summary>
public sealed partial class UsageErrorTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    /// <summary>Every command and subcommand; <see cref="EveryCommandTheHelpLists_IsCheckedHere"/> keeps the list whole.</summary>
    public static TheoryData<string> Commands => [.. CommandList];

    private static readonly string[] CommandList =
    [
        "run", "list", "show", "logs", "diff", "compare", "stats", "ui", "wait", "cancel", "approve", "deny", "merge", "apply", "discard", "gc",
        "reply", "retry", "checkpoints", "rewind", "daemon status", "daemon start", "daemon stop", "daemon run", "doctor",
        "sim serve", "mcp", "config get", "config set", "config unset", "config path", "completion", "help",
    ];

    [Theory]
    [MemberData(nameof(Commands))]
    public async Task AnUnknownOption_ExitsWithBadInput_SayingWhich_ThenTheCommandsUsage(string command)
    {
        var result = await _h.OffloadAsync([.. command.Split(' '), "--no-such-option"]);

        AssertUsageError(result, command, $"`offload {command}` has no option --no-such-option");
    }

    [Theory]
    [InlineData("nosuch", "", "there is no command 'nosuch'")]
    [InlineData("daemon nosuch", "daemon", "`offload daemon` has no command 'nosuch'")]
    [InlineData("daemon", "daemon", "`offload daemon` needs a command: status, start, stop, run")]
    [InlineData("show abc", "show", "'abc' is not a task number: task numbers are whole numbers like 12 (`offload ls --all` lists them)")]
    [InlineData("logs -1", "logs", "'-1' is not a task number: task numbers are whole numbers like 12 (`offload ls --all` lists them)")]
    [InlineData("wait 1 two", "wait", "'two' is neither a task number (like 12) nor a group (like g3): `offload ls` lists both")]
    [InlineData("show", "show", "`offload show` needs <id>")]
    [InlineData("show 1 2", "show", "`offload show` got one argument too many: '2'")]
    [InlineData("run fix the bug", "run", "`offload run` got one argument too many: 'the' (put text that has spaces in quotes)")]
    [InlineData("run --model", "run", "--model needs a value")]
    [InlineData("rewind 1", "rewind", "`offload rewind` needs --to <to>")]
    [InlineData("rewind 1 --to three", "rewind", "'three' is not a valid --to for `offload rewind`: it takes a whole number")]
    [InlineData("list -n 0", "list", "--limit takes a whole number above 0, not '0'")]
    [InlineData("run --max-turns many x", "run", "--max-turns takes a whole number of turns above 0, e.g. 50, not 'many'")]
    [InlineData("run --max-cost 1,50 x", "run", "--max-cost takes an amount of US dollars above 0, e.g. 2.50, not '1,50'")]
    [InlineData("retry 1 --timeout soon", "retry", "--timeout takes a duration above 0 like 90s, 20m or 2h, not 'soon'")]
    [InlineData("sim serve --port http", "sim serve", "'http' is not a valid --port for `offload sim serve`: it takes a whole number")]
    public async Task AMalformedCommandLine_ExitsWithBadInput_SayingWhatIsWrong_ThenTheCommandsUsage(string line, string command, string problem)
    {
        var result = await _h.OffloadAsync(line.Split(' '));

        AssertUsageError(result, command, problem);
    }

    [Fact]
    public async Task OffloadAlone_OrHelpAlone_PrintsTheHelp()
    {
        foreach (var args in new[] { Array.Empty<string>(), ["help"] })
        {
            var result = await _h.OffloadAsync(args);

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("offload run \"fix the flaky auth test\"", result.Stdout);
            Assert.Empty(result.Stderr);
        }
    }

    [Fact]
    public async Task EveryCommandTheHelpLists_IsCheckedHere()
    {
        var listed = new List<string>();
        foreach (var name in CommandNames((await _h.OffloadAsync("--help")).Stdout))
        {
            var subcommands = CommandNames((await _h.OffloadAsync(name, "--help")).Stdout).ToList();
            listed.AddRange(subcommands.Count == 0 ? [name] : subcommands.Select(s => $"{name} {s}"));
        }

        Assert.Equal(listed.Order(StringComparer.Ordinal), CommandList.Order(StringComparer.Ordinal));
    }

    private void AssertUsageError(CliResult result, string command, string problem)
    {
        var name = command.Length == 0 ? "offload" : $"offload {command}";
        Assert.True(result.ExitCode == 2, result.ToString());
        var lines = result.Stderr.TrimEnd('\n').Split('\n');
        Assert.Equal($"offload: {problem}", lines[0]);
        Assert.StartsWith($"usage: {name}", lines[1]);
        Assert.Equal($"  more: {name} --help", lines[^1]);
        Assert.True(lines.Length <= 6, $"more than the usage: {result}");
        Assert.DoesNotContain("System.", result.Stderr);
        Assert.DoesNotContain("Description:", result.Stderr);
        Assert.Empty(result.Stdout);
        Assert.False(File.Exists(_h.SocketPath), "a daemon was started for a command line that was refused");
    }

    /// <summary>The names in a help text's "Commands:" section (the first word of each entry, aliases left out).</summary>
    private static IEnumerable<string> CommandNames(string help)
    {
        var at = help.IndexOf("Commands:\n", StringComparison.Ordinal);
        return at < 0 ? [] : CommandLine().Matches(help[(at + "Commands:\n".Length)..]).Select(m => m.Groups[1].Value);
    }

    [GeneratedRegex(@"^  ([a-z][a-z-]*)[ ,]", RegexOptions.Multiline)]
    private static partial Regex CommandLine();
}
