"""The SoccerKD Stream service: camera frames in through Kafka, action events out.

It imports :mod:`soccerkd` for the model artifact and clip spec, never the reverse.
"""
