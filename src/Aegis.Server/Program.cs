namespace Aegis.Server;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("aegis: no command yet");
        return 1;
    }
}
