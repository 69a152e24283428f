"""The capture pipeline: how packets are read (a PacketSource: live_source.LiveCapture),
where they go (a PacketSink: pcap_sink.PcapFileSink), the session that moves them between
the two until a limit or a stop (session.py), and the pcap file format (pcap_format.py)."""
