using System.Net;
using System.Net.Sockets;

namespace Aegis.Server.Tests.Hostile;

/// <summary>Idle TCP connections from chosen loopback addresses, as the flood tests of both the DICOM and HTTPS ports open them.</summary>
internal static class IdleSockets
{
    public static async Task<Socket> ConnectFromAsync(IPAddress from, int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        return socket;
    }

    /// <summary>True once the server has closed (or reset) the connection; PDUs it sent first (A-ASSOCIATE-AC/RJ, A-ABORT) are read past.</summary>
    public static bool ClosedByServer(Socket socket)
    {
        try
        {
            var buffer = new byte[4096];
            while (socket.Poll(0, SelectMode.SelectRead))
                if (socket.Receive(buffer) == 0) return true;
            return false;
        }
        catch (SocketException) { return true; }
        catch (ObjectDisposedException) { return true; }
    }

    /// <summary>
    /// Keeps <paramref name="perAddress"/> idle connections open from each of 12 addresses (<paramref name="prefix"/>1 ..
    /// 12), reopening those the server closes, while <paramref name="during"/> runs (started once <paramref name="heldAtLeast"/>
    /// are open). Returns how many connections the flood opened; the ones still open are left in <paramref name="spread"/>.
    /// </summary>
    public static async Task<int> SpreadFloodAsync(int port, string prefix, int perAddress, int heldAtLeast, List<Socket> spread, Func<Task> during)
    {
        using var stop = new CancellationTokenSource();
        var flooding = Task.Run(async () =>
        {
            int opened = 0;
            while (!stop.IsCancellationRequested)
            {
                lock (spread) spread.RemoveAll(x => { if (!ClosedByServer(x)) return false; x.Dispose(); return true; });
                for (int a = 0; a < 12 && !stop.IsCancellationRequested; a++)
                {
                    var from = IPAddress.Parse(prefix + (a + 1));
                    int have;
                    lock (spread) have = spread.Count(x => ((IPEndPoint)x.LocalEndPoint!).Address.Equals(from));
                    for (; have < perAddress; have++)
                    {
                        var x = await ConnectFromAsync(from, port);
                        lock (spread) spread.Add(x);
                        opened++;
                    }
                }
                await Task.Delay(20);
            }
            return opened;
        });
        try
        {
            while (true)
            {
                int n; lock (spread) n = spread.Count;
                if (n >= heldAtLeast || flooding.IsCompleted) break;
                await Task.Delay(50);
            }
            await during();
        }
        finally
        {
            stop.Cancel();
        }
        return await flooding;
    }
}
