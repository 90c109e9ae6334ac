using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.Text;
using System.Text.RegularExpressions;

namespace Offload.Cli;

/// <summary>
/// A command line the parser refused, for every command (Program.cs sends each one here): exit 2, one line saying what
/// was wrong, then the command's usage: a synopsis of its arguments and options, not the whole help.
/// </summary>
public static partial class Usage
{
    private const int Width = 100;

    public static int Refuse(ParseResult parse, TextWriter error)
    {
        var command = parse.CommandResult.Command;
        error.WriteLine($"offload: {Problem(parse)}");
        foreach (var line in Synopsis(command))
        {
            error.WriteLine(line);
        }

        error.WriteLine($"  more: {Name(command)} --help");
        return ExitCodes.BadInput;
    }

    /// <summary>
    /// Whether the command line is refused: the parser found an error, or a command's argument got a word that is an
    /// option's spelling (<c>show --jsn</c>; <c>run --no-such-option</c> would otherwise run a task with that prompt).
    /// A word after <c>--</c> is taken as it is.
    /// </summary>
    public static bool IsRefused(ParseResult parse) =>
        parse.Action is System.CommandLine.Invocation.ParseErrorAction || StrayOption(parse) is not null;

    private static string? StrayOption(ParseResult parse)
    {
        var literal = parse.Tokens.SkipWhile(t => t.Type != TokenType.DoubleDash).Skip(1).Select(t => t.Value).ToHashSet(StringComparer.Ordinal);
        return parse.CommandResult.Children.OfType<ArgumentResult>().SelectMany(a => a.Tokens).Select(t => t.Value)
            .FirstOrDefault(v => v.Length > 1 && v[0] == '-' && !char.IsAsciiDigit(v[1]) && !literal.Contains(v));
    }

    /// <summary>What was wrong, in one line: the first word the parser could not place, else its first error, reworded.</summary>
    private static string Problem(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        var name = Name(command);
        if ((StrayOption(parse) ?? parse.UnmatchedTokens.FirstOrDefault()) is { } token)
        {
            return token.StartsWith('-') ? $"`{name}` has no option {token}"
                : command is RootCommand ? $"there is no command '{token}'"
                : command.Subcommands.Count > 0 ? $"`{name}` has no command '{token}'"
                : command.Arguments.Any(a => a.ValueType == typeof(string)) ? $"`{name}` got one argument too many: '{token}' (put text that has spaces in quotes)"
                : $"`{name}` got one argument too many: '{token}'";
        }

        var message = parse.Errors[0].Message;
        if (CannotParse().Match(message) is { Success: true } m)
        {
            var what = m.Groups["kind"].Value == "option" ? m.Groups["symbol"].Value : $"<{command.Arguments.FirstOrDefault()?.Name ?? m.Groups["symbol"].Value}>";
            return $"'{m.Groups["value"].Value}' is not a valid {what} for `{name}`: it takes {Kind(m.Groups["type"].Value)}";
        }

        if (RequiredArgument().IsMatch(message))
        {
            return $"`{name}` needs {string.Join(" ", command.Arguments.Where(a => a.Arity.MinimumNumberOfValues > 0).Select(a => $"<{a.Name}>"))}";
        }

        if (RequiredOptionValue().Match(message) is { Success: true } o)
        {
            return $"{o.Groups["symbol"].Value} needs a value";
        }

        if (RequiredOption().Match(message) is { Success: true } r
            && command.Options.FirstOrDefault(o => o.Name == r.Groups["symbol"].Value) is { } required)
        {
            return $"`{name}` needs {required.Name} <{required.HelpName ?? required.Name.TrimStart('-')}>";
        }

        if (RequiredCommand().IsMatch(message))
        {
            return $"`{name}` needs a command: {string.Join(", ", command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name))}";
        }

        return message.TrimEnd('.');
    }

    /// <summary>The command's synopsis, wrapped: <c>usage: offload run [&lt;prompt&gt;] [--file &lt;file&gt;] …</c>; a command with subcommands lists them.</summary>
    internal static IEnumerable<string> Synopsis(Command command)
    {
        var words = new List<string>();
        if (command.Subcommands.Count > 0)
        {
            words.Add("<command>");
        }

        foreach (var argument in command.Arguments.Where(a => !a.Hidden))
        {
            var word = $"<{argument.Name}>" + (argument.Arity.MaximumNumberOfValues > 1 ? "..." : "");
            words.Add(argument.Arity.MinimumNumberOfValues == 0 ? $"[{word}]" : word);
        }

        foreach (var option in command.Options.Where(o => !o.Hidden && o is not HelpOption and not VersionOption))
        {
            var word = option.ValueType == typeof(bool) ? option.Name : $"{option.Name} <{option.HelpName ?? option.Name.TrimStart('-')}>";
            words.Add(option.Required ? word : $"[{word}]");
        }

        foreach (var line in Wrap($"usage: {Name(command)}", words, "usage:".Length))
        {
            yield return line;
        }

        if (command.Subcommands.Count > 0)
        {
            var names = command.Subcommands.Where(c => !c.Hidden).Select(c => c.Aliases.Count > 0 ? $"{c.Name} ({string.Join(", ", c.Aliases)})" : c.Name).ToList();
            foreach (var line in Wrap("  commands:", [.. names.SkipLast(1).Select(n => n + ","), names[^1]], "  commands:".Length))
            {
                yield return line;
            }
        }
    }

    private static IEnumerable<string> Wrap(string start, IEnumerable<string> words, int indent)
    {
        var line = new StringBuilder(start);
        foreach (var word in words)
        {
            if (line.Length + 1 + word.Length > Width)
            {
                yield return line.ToString();
                line.Clear().Append(' ', indent);
            }

            line.Append(' ').Append(word);
        }

        yield return line.ToString();
    }

    /// <summary>The command as typed: <c>offload daemon status</c>.</summary>
    private static string Name(Command command)
    {
        var names = new List<string>();
        for (Symbol? s = command; s is not null; s = s.Parents.FirstOrDefault())
        {
            names.Insert(0, s is RootCommand ? "offload" : s.Name);
        }

        return string.Join(' ', names);
    }

    private static string Kind(string type) => type switch
    {
        _ when type.Contains("Int", StringComparison.Ordinal) => "a whole number",
        _ when type.Contains("Decimal", StringComparison.Ordinal) || type.Contains("Double", StringComparison.Ordinal) => "a number",
        _ => "another kind of value (see --help)",
    };

    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for (?<kind>command|option|argument) '(?<symbol>[^']*)' as expected type '(?<type>[^']*)'")]
    private static partial Regex CannotParse();

    [GeneratedRegex(@"^Required argument missing for command")]
    private static partial Regex RequiredArgument();

    [GeneratedRegex(@"^Required argument missing for option: '(?<symbol>[^']*)'")]
    private static partial Regex RequiredOptionValue();

    [GeneratedRegex(@"^Option '(?<symbol>[^']*)' is required")]
    private static partial Regex RequiredOption();

    [GeneratedRegex(@"^Required command was not provided")]
    private static partial Regex RequiredCommand();
}
