"""Taking readings off the wire: fast validated decoding and counting rejections.

Shared by every service that subscribes to readings (storage, aggregator), so they
accept and reject exactly the same payloads for the same reasons.
"""
