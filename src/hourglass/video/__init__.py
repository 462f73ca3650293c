"""Videos, folders of frames and cameras through the Predictor, frame after frame.

- :mod:`~hourglass.video.sources`: frame sources read through OpenCV (:class:`~hourglass.video.sources.FrameSource`);
- :mod:`~hourglass.video.stream`: one source through overlapping threads (read, people, pose with tracks and
  smoothing, draw, encode) into a keypoints JSON file and an overlay video
  (:class:`~hourglass.video.stream.StreamRun`).

Above ``inference`` and ``people``; ``hourglass predict`` (:mod:`hourglass.predict`) and the CLI drive it.
"""
