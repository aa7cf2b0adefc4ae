using System.CommandLine;
using Aegis.Server.Cli;

namespace Aegis.Server;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("Aegis: a secure-by-default medical image archive (PACS)");
        root.Subcommands.Add(DumpCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(UserCommand.Create());
        root.Subcommands.Add(AeCommand.Create());
        root.Subcommands.Add(AuditCommand.Create());
        root.Subcommands.Add(ShareCommand.Create());
        root.Subcommands.Add(ScanCommand.Create());
        root.Subcommands.Add(ImportCommand.Create());
        root.Subcommands.Add(KeysCommand.Create());
        root.Subcommands.Add(CheckCommand.Create());
        return root.Parse(args).Invoke();
    }
}
