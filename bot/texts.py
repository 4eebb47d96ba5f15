"""Every user-facing string the bot sends, in Russian: short and friendly. Placeholders use str.format.
The notices jobs/ sends the moderators itself (publishing outcomes) are in jobs/notices.py: jobs/
never imports bot/."""
from __future__ import annotations

START = (
    "Привет! Я пишу бугурт-треды — нейросеть, обученная на постах сообщества.\n\n"
    "/generate — свежий бугурт\n"
    "/generate ТЕКСТ — продолжу твоё начало\n"
    "/generate про СЛОВО — бугурт на тему\n"
    "/meme N — покажу мем номер N ещё раз\n"
    "/top — лучшие посты канала за неделю\n"
    "/rate — оценить посты вслепую (если включено)\n"
    "/help — эта подсказка"
)
HELP = START
# the VK community's messages answer no /rate (bot/vk/messages.py)
VK_START = START.replace("/rate — оценить посты вслепую (если включено)\n", "")
MODERATOR_HELP = (
    "Здесь появляются черновики для канала. Кнопки: «Одобрить», «Отклонить» (или с причиной), «Заново» "
    "(отклонить и сгенерировать замену). Чтобы одобрить с правкой, ответьте на черновик "
    "всем постом, исправленным (комментарии в ответ на черновик не публикуются); "
    "чтобы отклонить со своей причиной — ответьте «/reject причина».\n\n"
    "/queue — очередь: ждущие решения и одобренные, со слотом и каналом каждого\n"
    "/pause [канал] — остановить публикации (все или в один канал), /resume [канал] — продолжить\n"
    "/stats [дни] — график и цифры за последние дни (по умолчанию 14)\n"
    "/rate — слепая оценка: бот показывает по одному посту (настоящие посты сообщества вперемешку "
    "с черновиками модели, не говоря, что есть что); ответьте на оба вопроса кнопками."
)
# added to /start, /help and the moderators' help while the first model trains on the corpus
FIRST_MODEL_TRAINING = (
    "⏳ Первая модель ещё обучается на постах сообщества; пока черновики пишет встроенная модель."
)
COMMANDS = [
    ("generate", "свежий бугурт (или продолжение твоего текста)"),
    ("meme", "мем по номеру: /meme 42"),
    ("top", "лучшие посты за неделю"),
    ("help", "что я умею"),
]
# added before "help" to the subscribers' menu when rate.subscribers is on
RATE_COMMAND = ("rate", "оценить посты вслепую")
MODERATOR_COMMANDS = [
    ("queue", "очередь: ждущие решения и одобренные со слотами"),
    ("pause", "остановить публикации (все или в один канал)"),
    ("resume", "продолжить публикации"),
    ("stats", "статистика за N дней: /stats 30"),
    ("rate", "слепая оценка постов и черновиков"),
    ("help", "как модерировать"),
]

# subscribers
MEME = "Мем #{id}\n\n{text}"
COOLDOWN = "Не так быстро 🙂 Следующий бугурт через {seconds} с."
FLOOD = "Слишком много команд подряд 🙂 Подожди {seconds} с — остальные пока пропускаю."
BUSY = "Сейчас все генераторы заняты, а готовые бугурты кончились. Попробуй через минуту."
DESK_BUSY = ("База данных сейчас занята (резервная копия или ночное обучение), ничего не изменилось."
             " Попробуйте через минуту.")
# DESK_BUSY's answer when the database refused the write because the disk is full: waiting will not help
DESK_DISK_FULL = ("На диске бота кончилось место, ничего не изменилось. Попросите того, кто обслуживает бота,"
                  " освободить место (buhurt doctor покажет, сколько свободно), и повторите.")
DATABASE_BUSY = "Бот сейчас занят обслуживанием базы и не может выдать бугурт. Попробуй через пару минут."
GENERATOR_FAILED = "Не получилось сгенерировать бугурт. Попробуй ещё раз чуть позже."
NOTHING_GOOD = "Модель выдала что-то непубликуемое. Попробуй другое начало."
TOPIC_UNKNOWN = "Про «{word}» модель написать не может: она не знает таких букв. Попробуй другое слово."
TOPIC_FAILED = "Про «{word}» сейчас ничего приличного не вышло. Попробуй ещё раз или другое слово."
START_TOO_LONG = "Слишком длинное начало: в нём символов — {length}, а можно не больше {limit}."
START_CONTROL = "В начале есть служебные символы. Напиши обычный текст."
START_EMPTY = "После /generate нужен текст, например: /generate ПРИХОДИШЬ В ШКОЛУ"
START_REFUSED = "Модель не может продолжить такой текст. Попробуй другое начало."
UNKNOWN_CHARS = "Я не знаю этих символов: {chars}. Попробуй русские буквы и знаки препинания."
MEME_USAGE = "Напиши номер мема, например: /meme 42"
MEME_NOT_FOUND = "Мема #{id} нет (или он ещё не опубликован)."
MEME_WITHHELD = "Мем #{id} больше не показываю: он не проходит нынешний фильтр."
MEME_FROM_ARCHIVE = "(модели, которая его написала, больше нет — показываю сохранённый текст)"
TOP_EMPTY = "За последние 7 дней в канале ещё не было постов с реакциями."
TOP_HEADER = "Лучшее за неделю:"
TOP_LINE = "{place}. Мем #{id} — реакций: {score}\n{preview}"

# moderators
DRAFT = "Черновик #{id}\n\n{text}"
DRAFT_SCORE = "Оценка {score:+.2f} · строк без ошибок согласования {grammar} · общий кусок с корпусом {shared} симв."
BUTTON_APPROVE = "✅ Одобрить"
BUTTON_REJECT = "❌ Отклонить"
BUTTON_REGENERATE = "🔄 Заново"
DECIDED_APPROVE = "✅ Одобрено: {who}, {when}"
DECIDED_EDIT = "✏️ Одобрено с правкой: {who}, {when}"
DECIDED_REJECT = "❌ Отклонено: {who}, {when}"
DECIDED_REGENERATE = "🔄 Отклонено и заменено: {who}, {when}"
ANSWER_DONE = "Готово"
NOT_ALLOWED = "Нельзя: вы не модератор."
STALE_BUTTON = "Эта кнопка устарела."
ALREADY_DECIDED = "Этот черновик уже обработан."
ALREADY_APPROVED = ("Этот черновик уже одобрен и ждёт публикации. Чтобы передумать, верните его в ожидание"
                    " (↩️ в /queue), затем отклоните.")
ALREADY_PUBLISHED = "Этот черновик уже опубликован — решение не изменить."
EDIT_NEEDS_QUORUM = ("Этот черновик уже одобрен кворумом. Чтобы изменить текст, верните его в ожидание"
                     " (↩️ в /queue): правку увидят и одобрят все.")
EDIT_UNDER_WAY = ("Мем уже опубликован в одном из каналов, в остальные он уйдёт с тем же текстом:"
                  " правку не применяю.")
EDIT_TOO_LONG = "Правка длиннее 4096 символов ({length}) — Telegram такое не опубликует. Сократите."
EDIT_EMPTY = "Правка пустая — черновик не изменён."
EDIT_SHORTENED = ("В правке осталась пометка «… (ещё N симв.)»: сообщение показывало пост не целиком."
                  " Черновик не изменён — пришлите пост целиком.")
EDIT_NOT_A_POST = ("Это не похоже на правку, черновик не изменён: комментарии не публикуются. "
                   "Чтобы исправить черновик, ответьте на него всем постом целиком, исправленным (строки через «@»).")
EDIT_REFUSED = "Правку не публикую: {why}. Черновик не изменён — пришлите другую правку или решите кнопкой."
EDIT_STOPLIST = "в ней слово из стоп-листа («{found}»)"
EDIT_COPY = "она повторяет пост из корпуса"
EDIT_DONE = "Правка принята: мем #{id} в очереди."
REGENERATE_FAILED = "Не удалось сгенерировать замену: {error}. Новые черновики придут при следующем пополнении."
REGENERATE_ALL_SCREENED = "все варианты отсеяны фильтром"
REMIND = "Напоминание: черновиков без решения — {pending}, а одобрений давно не было."
ERROR_REPORT = "⚠️ Ошибка в боте: {what}. Подробности — в журнале бота.\n{detail}"
# the report's {what} for Telegram's refusals (bot.telegram.error_handler.report); others: jobs.notices.reason
REPORT_FORBIDDEN = "Telegram отказал боту в доступе — проверьте, что бот в чате и у него есть права"
REPORT_BAD_REQUEST = "Telegram не принял запрос бота"
REPORT_FLOOD = "Telegram просит подождать: бот отправляет слишком много сообщений"
REPORT_NETWORK = "Telegram не ответил вовремя или связь прервалась; обычно это проходит само"
REPORT_UNEXPECTED = "непредвиденная ошибка в коде бота"
# the answer to the one whose command or button met an error (the report above goes to the moderators)
HANDLER_FAILED = "Что-то пошло не так, ответить не получилось. Попробуй ещё раз чуть позже."
DESK_FAILED = "Не получилось из-за ошибки в боте. Попробуйте ещё раз чуть позже."
# once until the long poll works again (bot/vk/messages.py, jobs/alerts.once)
VK_MESSAGES_REFUSED = ("📵 Сообщения VK-сообщества {group} остаются без ответа: VK отказывает боту ({said})."
                       " Проверьте токен сообщества (vk.community_token или BUHURT_VK_COMMUNITY_TOKEN)"
                       " и Bots Long Poll API в настройках сообщества (buhurt doctor).")

# why a post did not go out, in the moderators' notices (jobs/notices.py: PUBLISH_REFUSED, PUBLISH_IN_DOUBT,
# DIGEST_*), from the publishers' PublishError and PublishInDoubt (`told`); {said}: the network's own words
CHANNEL_FLOOD = "Telegram ограничил частоту отправки и не дал отправить пост после {waits} ожиданий"
CHANNEL_STOPPED = "бот остановился, пока ждал разрешения Telegram на отправку"
CHANNEL_FORBIDDEN = ("бот не может писать туда — его удалили из канала или он не администратор; верните ему права"
                     " (Telegram: «{said}»)")
CHANNEL_MIGRATED = "чат стал супергруппой с id {chat_id}: впишите этот id в telegram.channels"
CHANNEL_TOKEN = "Telegram не принял токен бота: проверьте telegram.token (buhurt doctor)"
CHANNEL_REFUSED = "Telegram не принял пост (Telegram: «{said}»)"
CHANNEL_NO_ANSWER = "Telegram не ответил как следует (Telegram: «{said}»)"
WALL_REFUSED = "VK отказал в публикации (ошибка {code}: «{said}»)"
WALL_FAILED = "VK ответил ошибкой сервера (ошибка {code}: «{said}»)"
WALL_HTTP = "шлюз VK ответил HTTP {status}"
WALL_CAPTCHA = "VK запросил капчу: токен кажется ему автоматическим; попробую в следующий слот"
WALL_UNREACHABLE = "VK API недоступен: нет соединения"
WALL_NO_ANSWER = "VK не ответил вовремя или связь прервалась"
WALL_NO_POST_ID = "VK ответил без номера поста"

# the moderators' desk
BUTTON_REJECT_WITH = "❌ {reason}"
VOTES = "Голоса ({have} из {need}): {votes}"
VOTE_APPROVE = "✅ {who}"
VOTE_REJECT = "❌ {who}"
VOTE_REJECT_WHY = "❌ {who} ({reason})"
VOTE_REGENERATE = "🔄 {who}"
VOTE_EDIT = "✏️ {who}"
ANSWER_VOTED = "Голос учтён: {have} из {need}"
DECIDED_REJECT_WHY = "❌ Отклонено ({reason}): {who}, {when}"
EDIT_VOTED = "Правка сохранена и засчитана как ваш голос «за»: {have} из {need}."
REJECT_USAGE = "Ответьте на черновик: /reject причина"
REJECT_DONE = "Черновик #{id} отклонён: {reason}"
REJECT_VOTED = "Голос «против» учтён ({reason}): {have} из {need}."
QUEUE_HEADER = "Очередь: ждут решения {pending}, одобрено {queued}. Слоты: {times} ({timezone})."
QUEUE_PAUSED = "⏸ Публикации на паузе: {where}"
QUEUE_EMPTY = "Очередь пуста: нет ни ждущих, ни одобренных черновиков."
QUEUE_MORE = "…и ещё {more}: сначала разберите эти."
QUEUE_ITEM = "В очереди: мем #{id}\n{places}\n\n{text}"
QUEUE_PLACE = "→ {where}: {when}"
QUEUE_PLACE_PAUSED = "на паузе"
QUEUE_PLACE_NONE = "нет слота в ближайшие 60 дней"
QUEUE_PLACE_HAD = "уже опубликован"
QUEUE_HELD = "(не раньше {when})"
BUTTON_NOW = "🚀 Сейчас"
BUTTON_LATER = "⏬ Позже"
BUTTON_HOLD = "+{hours} ч"
BUTTON_UNAPPROVE = "↩️ В ожидание"
ANSWER_PUBLISHED = "Опубликовано: {where}"
ANSWER_NOT_PUBLISHED = "Не опубликовано — все каналы на паузе или уже его получили."
ANSWER_NOT_SENT = "{where}: {why}"
NOT_SENT_WHY = {   # jobs.desk.publish_now's outcomes but "sent"
    "failed": "не опубликовано — канал отказал, подробности в чате.",
    "unknown": "ответа не было, пост мог и дойти — проверьте канал.",
    "stop-list": "не опубликовано — в нём слово из стоп-листа.",
    "near-copy": "не опубликовано — он повторяет мем, уже опубликованный там.",
    "busy": "не опубликовано — база данных занята, попробуйте через минуту.",
}
ANSWER_MOVED = "Перенесено в конец очереди"
ANSWER_HELD = "Не раньше {when}"
ANSWER_UNAPPROVED = "Возвращён в ожидание"
ANSWER_UNDER_WAY = "Уже публикуется — вернуть нельзя."
QUEUE_GONE = "Мем #{id} больше не в очереди."
PAUSE_DONE = "⏸ Пауза: {where}. Продолжить: /resume"
RESUME_DONE = "▶️ Публикации продолжены: {where}"
PAUSE_UNKNOWN = "Нет такого канала: «{name}». Есть: {known}"
PAUSE_NONE = "Публикации не на паузе."
STATS_USAGE = "Напишите число дней от 1 до {most}, например: /stats 30"
STATS_CAPTION = "Статистика за {days} дн."
STATS_FAILED = "График не построен: {error}. Цифры — ниже; /stats можно повторить позже."
STATS_PHOTO_REFUSED = ("График не отправлен: Telegram не дал отправить фото в этот чат ({said})."
                       " Разрешите боту отправлять фото в настройках группы; цифры — ниже.")

# the blind rating flow (/rate)
RATE_CARD = "Оценка вслепую ({who})\n\n{text}"
RATE_READABLE_YES = "читается от начала до конца"
RATE_PUBLISH_YES = "опубликовал бы"
RATE_NO = "нет"
RATE_CHOSEN = "✓ {label}"
RATE_THANKS = "Спасибо! Оценено: {readable} · {publish}"
RATE_DONE = "Вы оценили всё, что есть сейчас. Спасибо! Новые посты появятся позже."
RATE_ALREADY = "Этот пост уже оценён."
RATE_NOT_YOURS = "Это карточка другого оценщика: начните свою командой /rate."
RATE_NOT_ALLOWED = "Оценивать посты сейчас могут только модераторы."
RATE_FAILED = "Не получилось подобрать пост для оценки. Попробуйте чуть позже."

# /generate: a liked post from the channel
POPULAR = "Мем #{id} — из лучшего в канале\n\n{text}"
