using System.CommandLine;

namespace Offload.Cli.Commands;

public static class HelpCommand
{
    public static Command Create()
    {
        var topic = new Argument<string?>("topic") { Description = "exit-codes", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("help", "More help: `offload help exit-codes`") { topic };
        command.SetAction(parse =>
        {
            if (parse.GetValue(topic) is null)
            {
                return parse.RootCommandResult.Command.Parse("--help").Invoke();
            }

            if (parse.GetValue(topic) != "exit-codes")
            {
                throw new CliException(ExitCodes.BadInput, $"no help topic '{parse.GetValue(topic)}'", "offload help exit-codes, or offload --help");
            }

            Console.Out.WriteLine(ExitCodes.Table);
            return ExitCodes.Ok;
        });
        return command;
    }
}
